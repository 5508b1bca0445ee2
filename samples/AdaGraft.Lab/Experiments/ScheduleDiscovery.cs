using System;
using System.Collections.Generic;
using System.Linq;
using AdaGraft.Diagnostics;
using AdaGraft.Grafting;
using AdaGraft.Lab.Tasks;
using AdaGraft.Lab.Training;
using AdaGraft.Schedules;

namespace AdaGraft.Lab.Experiments;

/// <summary>What schedule discovery found.</summary>
/// <param name="Task">The task it ran on.</param>
/// <param name="LrSgd">SGD's tuned learning rate (M of the global graft).</param>
/// <param name="LrAdaGrad">AdaGrad's tuned learning rate (base of the corrected AdaGrad).</param>
/// <param name="Ratios">‖ΔM‖/‖ΔD‖ per step (D's learning rate 1): the learning rate the graft gave AdaGrad's direction.</param>
/// <param name="Correction">Ratios / (lr_AdaGrad · schedule(t)): the factor by which AdaGrad's own scheduled learning
/// rate would have to be multiplied to take the graft's steps (the library's <see cref="StepNormRecorder.Corrections"/>).</param>
/// <param name="Fit">The least-squares line c0 + c1·t through <paramref name="Correction"/>, t the 1-based step
/// (<see cref="StepNormRecorder.FitCorrection"/>).</param>
/// <param name="Graft">The global graft SGD#AdaGrad's run (seed 0; the correction is fitted on it).</param>
/// <param name="Corrected">AdaGrad with the fitted correction multiplied onto the shared schedule, one run per seed.</param>
/// <param name="AdaGrad">Plain AdaGrad, one run per seed.</param>
/// <param name="Sgd">Plain SGD, one run per seed.</param>
/// <param name="ReadEvery">Steps between host reads of the recorded ratios.</param>
public sealed record DiscoveryResult(string Task, double LrSgd, double LrAdaGrad, IReadOnlyList<double> Ratios, IReadOnlyList<double> Correction,
    ScheduleFitResult Fit, RunResult Graft, IReadOnlyList<RunResult> Corrected, IReadOnlyList<RunResult> AdaGrad, IReadOnlyList<RunResult> Sgd, int ReadEvery)
{
    /// <summary>The correction applied to AdaGrad at step index t (0-based, as <see cref="Ratios"/>): max(c0 + c1·(t + 1), 0),
    /// the fit's own <see cref="ScheduleCorrections.ToCorrection"/>.</summary>
    public double Applied(int t) => Fit.ToCorrection().Factor(t + 1);

    /// <summary>The fitted line at step index t (0-based, as <see cref="Ratios"/>).</summary>
    public double FitAt(int t) => Fit.Evaluate(t + 1);

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
/// k steps), take the correction c(t) against AdaGrad's own scheduled rate and fit a line c0 + c1·t (the library's
/// <see cref="StepNormRecorder.FitCorrection"/>), then train AdaGrad with the fit's correction multiplied onto the
/// shared schedule and compare with plain AdaGrad and SGD over the same seeds.
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

        // AdaGrad's own rate at optimizer step s (1-based): its tuned lr times the shared schedule at index s − 1.
        Func<long, double> adaGradRate = s => lrAda * schedule.Multiplier((int)(s - 1));
        var correction = recorded.Corrections(adaGradRate).corrections;
        var fit = recorded.FitCorrection(adaGradRate, ScheduleFamily.Linear);
        var fitted = fit.ToCorrection();
        // The trainer's LambdaLR passes the 0-based step index.
        Func<int, double> applied = t => fitted.Factor(t + 1);

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
