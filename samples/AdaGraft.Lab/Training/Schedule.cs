using System;
using TorchSharp;
using static TorchSharp.torch.optim;

namespace AdaGraft.Lab.Training;

/// <summary>The explicit learning-rate schedule shared by every optimizer of a run.</summary>
public enum ScheduleKind
{
    /// <summary>The paper's shape (appendix C.2): linear warmup over the first 5/90 of training, then ×0.1 at 30/90,
    /// 60/90 and 80/90 of training (ResNet-50: 5 warmup epochs, drops at epochs 30, 60, 80 of 90).</summary>
    WarmupStaircase = 0,

    /// <summary>The same ×0.1 drops without warmup.</summary>
    Staircase = 1,

    /// <summary>Multiplier 1 throughout.</summary>
    Constant = 2,
}

/// <summary>A schedule over <see cref="TotalSteps"/> steps: <see cref="Multiplier"/>(t) multiplies an optimizer's
/// base learning rate at step t (0-based).</summary>
public sealed record Schedule(ScheduleKind Kind, int TotalSteps)
{
    /// <summary>Fraction of training spent warming up (5 of 90 epochs in the paper).</summary>
    public const double WarmupFraction = 5.0 / 90;

    /// <summary>Where the ×0.1 drops happen, as fractions of training (epochs 30, 60 and 80 of 90).</summary>
    public static readonly double[] DropFractions = { 30.0 / 90, 60.0 / 90, 80.0 / 90 };

    /// <summary>Parses "constant", "staircase" or "warmup-staircase".</summary>
    public static ScheduleKind ParseKind(string text) => text?.Trim().ToLowerInvariant() switch {
        "constant" => ScheduleKind.Constant,
        "staircase" => ScheduleKind.Staircase,
        "warmup-staircase" or "warmup" or "paper" => ScheduleKind.WarmupStaircase,
        _ => throw new ArgumentException($"Unknown schedule '{text}'; use constant, staircase or warmup-staircase.", nameof(text)),
    };

    /// <summary>The option spelling of a kind.</summary>
    public static string Name(ScheduleKind kind) => kind switch {
        ScheduleKind.Constant => "constant",
        ScheduleKind.Staircase => "staircase",
        _ => "warmup-staircase",
    };

    /// <summary>The number of warmup steps (at least 1 when warming up).</summary>
    public int WarmupSteps => Kind == ScheduleKind.WarmupStaircase ? Math.Max(1, (int)Math.Round(TotalSteps * WarmupFraction)) : 0;

    /// <summary>The multiplier at step <paramref name="t"/> (0-based; the first step gets 1/warmup, not 0).</summary>
    public double Multiplier(int t)
    {
        if (Kind == ScheduleKind.Constant) return 1;
        double m = 1;
        int w = WarmupSteps;
        if (t < w) m = (t + 1) / (double)w;
        foreach (var f in DropFractions)
            if (t >= (int)Math.Round(f * TotalSteps)) m *= 0.1;
        return m;
    }

    /// <summary>
    /// Attaches the schedule to <paramref name="optimizer"/> as a TorchSharp <c>LambdaLR</c> (step it once after every
    /// optimizer step). On a graft it drives M's learning rate. <paramref name="correction"/>, if given, is multiplied
    /// onto the schedule (schedule discovery).
    /// </summary>
    public lr_scheduler.LRScheduler Attach(Optimizer optimizer, Func<int, double>? correction = null) =>
        torch.optim.lr_scheduler.LambdaLR(optimizer, t => Multiplier(t) * (correction?.Invoke(t) ?? 1.0));
}
