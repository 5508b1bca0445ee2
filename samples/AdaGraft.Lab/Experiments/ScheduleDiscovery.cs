using System;
using System.Collections.Generic;
using System.Linq;
using AdaGraft.Diagnostics;
using AdaGraft.Grafting;
using AdaGraft.Lab.Discovery;
using AdaGraft.Lab.Tasks;
using AdaGraft.Lab.Training;

namespace AdaGraft.Lab.Experiments;

/// <summary>What schedule discovery found.</summary>
/// <param name="Task">The task it ran on.</param>
/// <param name="LrSgd">SGD's tuned learning rate (M of the global graft).</param>
/// <param name="LrAdaGrad">AdaGrad's tuned learning rate (base of the corrected AdaGrad).</param>
/// <param name="Ratios">‖ΔM‖/‖ΔD‖ per step (D's learning rate 1): the learning rate the graft gave AdaGrad's direction.</param>
/// <param name="Correction">Ratios / (lr_AdaGrad · schedule(t)): the factor by which AdaGrad's own scheduled learning
/// rate would have to be multiplied to take the graft's steps.</param>
/// <param name="Fit">The least-squares line through <paramref name="Correction"/>.</param>
/// <param name="Graft">The global graft SGD#AdaGrad's run (seed 0; the correction is fitted on it).</param>
/// <param name="Corrected">AdaGrad with the fitted correction multiplied onto the shared schedule, one run per seed.</param>
/// <param name="AdaGrad">Plain AdaGrad, one run per seed.</param>
/// <param name="Sgd">Plain SGD, one run per seed.</param>
/// <param name="ReadEvery">Steps between host reads of the recorded ratios.</param>
public sealed record DiscoveryResult(string Task, double LrSgd, double LrAdaGrad, IReadOnlyList<double> Ratios, IReadOnlyList<double> Correction,
    LinearFit Fit, RunResult Graft, IReadOnlyList<RunResult> Corrected, IReadOnlyList<RunResult> AdaGrad, IReadOnlyList<RunResult> Sgd, int ReadEvery)
{
    /// <summary>The correction applied to AdaGrad at step t: max(c0 + c1·t, 0).</summary>
    public double Applied(int t) => Math.Max(Fit.At(t), 0);

    /// <summary>Every recorded norm of the graft (per tensor and global), for the CSV the <c>fit</c> command reads.</summary>
    public IReadOnlyList<StepNormRecord> Norms { get; init; } = Array.Empty<StepNormRecord>();

    /// <summary>Final training loss of corrected AdaGrad over seeds.</summary>
    public Stat CorrectedLoss => Stat.Of(Corrected.Select(r => r.Final.TrainLoss).ToList());

    /// <summary>Final training loss of plain AdaGrad over seeds.</summary>
    public Stat AdaGradLoss => Stat.Of(AdaGrad.Select(r => r.Final.TrainLoss).ToList());

    /// <summary>Final training loss of plain SGD over seeds.</summary>
    public Stat SgdLoss => Stat.Of(Sgd.Select(r => r.Final.TrainLoss).ToList());

    /// <summary>True when corrected AdaGrad's mean final training loss is below plain AdaGrad's.</summary>
    public bool Helped => CorrectedLoss.Mean < AdaGradLoss.Mean;

    /// <summary>Corrected minus plain AdaGrad's final training loss, per seed (negative: the correction helped).</summary>
    public IReadOnlyList<double> PairedDifferences =>
        Corrected.Zip(AdaGrad, (c, a) => c.Final.TrainLoss - a.Final.TrainLoss).ToList();
}

/// <summary>
/// Section 3.4: run global grafting SGD#AdaGrad, record the global norm ratio every step (on the device, read every
/// k steps), fit a linear correction c0 + c1·t, then train AdaGrad with the correction multiplied onto the shared
/// schedule and compare with plain AdaGrad and SGD over the same seeds.
/// </summary>
public static class ScheduleDiscovery
{
    /// <summary>Runs discovery on <paramref name="task"/>: the graft on seed 0, the comparison on seeds 0 … seeds − 1.
    /// <paramref name="reuse"/> may supply plain SGD and AdaGrad runs of the same task, seed, steps and schedule
    /// (from the table).</summary>
    public static DiscoveryResult Run(LabTask task, IReadOnlyDictionary<BaseOptimizer, LrChoice> lrs, Schedule schedule, int seeds, int readEvery,
        Func<BaseOptimizer, int, RunResult?>? reuse, Action? progress, Action<string>? status)
    {
        ArgumentNullException.ThrowIfNull(task);
        ArgumentNullException.ThrowIfNull(lrs);
        ArgumentNullException.ThrowIfNull(schedule);
        double lrSgd = lrs[BaseOptimizer.Sgd].Lr, lrAda = lrs[BaseOptimizer.AdaGrad].Lr;
        int steps = schedule.TotalSteps;

        // The library's recorder: norms stay on the device and reach the host every readEvery steps.
        StepNormRecorder? recorder = null;
        status?.Invoke($"{task.Name}: global graft SGD#AdaGrad");
        var graftSpec = new RunSpec("SGD#AdaGrad (global)",
            ps => {
                var cell = BaseOptimizers.Cell(BaseOptimizer.Sgd, BaseOptimizer.AdaGrad, ps, lrSgd, GraftGranularity.Global);
                recorder = new StepNormRecorder((GraftOptimizer)cell, new RecorderOptions { FlushEvery = readEvery, MaxRecordedSteps = Math.Max(steps, 2) });
                return cell;
            },
            schedule);
        var graft = Trainer.Run(task, graftSpec, 0, steps, readEvery, progress);
        using var recorded = recorder ?? throw new InvalidOperationException("The graft was never built.");
        var records = recorded.Records();
        var ratios = recorded.GlobalRatios().ratios;

        var correction = ratios.Select((r, t) => r / (lrAda * schedule.Multiplier(t))).ToArray();
        var fit = LinearFit.FitSeries(correction);
        Func<int, double> applied = t => Math.Max(fit.At(t), 0);

        var corrected = new List<RunResult>();
        var adagrad = new List<RunResult>();
        var sgd = new List<RunResult>();
        RunResult Plain(BaseOptimizer o, double lr, int seed)
        {
            var hit = reuse?.Invoke(o, seed);
            if (hit is not null) return hit;
            status?.Invoke($"{task.Name}: plain {BaseOptimizers.Name(o)} (seed {seed})");
            return Trainer.Run(task, new RunSpec(BaseOptimizers.Name(o), ps => BaseOptimizers.Create(o, ps, lr), schedule), seed, steps, readEvery, progress);
        }
        for (int seed = 0; seed < seeds; seed++) {
            status?.Invoke($"{task.Name}: corrected AdaGrad (seed {seed})");
            corrected.Add(Trainer.Run(task,
                new RunSpec("AdaGrad (corrected)", ps => BaseOptimizers.Create(BaseOptimizer.AdaGrad, ps, lrAda), schedule, Correction: applied),
                seed, steps, readEvery, progress));
            adagrad.Add(Plain(BaseOptimizer.AdaGrad, lrAda, seed));
            sgd.Add(Plain(BaseOptimizer.Sgd, lrSgd, seed));
        }
        return new DiscoveryResult(task.Name, lrSgd, lrAda, ratios, correction, fit, graft, corrected, adagrad, sgd, readEvery) { Norms = records };
    }
}
