using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Linq;
using AdaGraft.Lab.Tasks;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.optim;

namespace AdaGraft.Lab.Training;

/// <summary>One training run's outcome.</summary>
/// <param name="Name">Optimizer (cell) name, e.g. "SGD#Adam".</param>
/// <param name="Seed">Seed of model initialisation and batch order.</param>
/// <param name="Final">Final training loss and held-out metric (NaN when diverged).</param>
/// <param name="Losses">Training loss of every step run (read from the device every k steps).</param>
/// <param name="Diverged">True when a recorded loss was not finite (the run was stopped at the next read).</param>
/// <param name="Seconds">Wall time of training and evaluation.</param>
public sealed record RunResult(string Name, int Seed, Evaluation Final, double[] Losses, bool Diverged, double Seconds)
{
    /// <summary>Wall time of the training loop alone (the steps run: forward, backward, optimizer step, scheduler), no
    /// model creation or evaluation.</summary>
    public double TrainSeconds { get; init; }

    /// <summary>Milliseconds per training step (<see cref="TrainSeconds"/> over the steps run; NaN when none ran).</summary>
    public double MsPerStep => StepsRun > 0 ? 1000 * TrainSeconds / StepsRun : double.NaN;

    /// <summary>Training steps actually run (fewer than asked when the run diverged).</summary>
    public int StepsRun { get; init; }
}

/// <summary>Describes a run to <see cref="Trainer.Run"/>.</summary>
/// <param name="Name">Display name.</param>
/// <param name="MakeOptimizer">Builds the optimizer over the model's parameters.</param>
/// <param name="Schedule">The shared schedule (attached as a LambdaLR).</param>
/// <param name="Correction">Multiplied onto the schedule when given (schedule discovery).</param>
/// <param name="AfterStep">Called after every optimizer step, inside the step's dispose scope (e.g. to record the
/// graft's norms); must not synchronise with the device.</param>
public sealed record RunSpec(
    string Name,
    Func<IReadOnlyList<Parameter>, Optimizer> MakeOptimizer,
    Schedule Schedule,
    Func<int, double>? Correction = null,
    Action<Optimizer, int>? AfterStep = null);

/// <summary>The training loop shared by every experiment of the lab.</summary>
public static class Trainer
{
    /// <summary>
    /// Trains a fresh model of <paramref name="task"/> (initialised from <paramref name="seed"/>) for
    /// <paramref name="steps"/> steps. Per step: zero_grad, loss, backward, optimizer step, record the loss into a
    /// device buffer, LR-scheduler step; no host–device synchronisation except the read of recorded losses every
    /// <paramref name="readEvery"/> steps. <paramref name="progress"/> is called once per step on the host.
    /// </summary>
    public static RunResult Run(LabTask task, RunSpec spec, int seed, int steps, int readEvery, Action? progress = null)
    {
        ArgumentNullException.ThrowIfNull(task);
        ArgumentNullException.ThrowIfNull(spec);
        if (steps < 1) throw new ArgumentOutOfRangeException(nameof(steps), steps, "At least one step.");
        var sw = Stopwatch.StartNew();
        using var model = task.CreateModel(seed);
        var parameters = model.parameters().ToList();
        using var optimizer = spec.MakeOptimizer(parameters);
        var scheduler = spec.Schedule.Attach(optimizer, spec.Correction);
        using var plan = task.CreatePlan(seed, steps);
        using var losses = new DeviceSeriesRecorder(steps, task.Device, readEvery);
        bool diverged = false;
        int stepsRun = 0;
        var loop = Stopwatch.StartNew();
        for (int t = 0; t < steps; t++) {
            bool read;
            using (var scope = torch.NewDisposeScope()) {
                optimizer.zero_grad();
                var loss = task.Loss(model, plan, t);
                loss.backward();
                optimizer.step();
                spec.AfterStep?.Invoke(optimizer, t);
                read = losses.Record(loss);
            }
            scheduler.step();
            stepsRun++;
            progress?.Invoke();
            if (read && !double.IsFinite(losses.HostValues[^1])) {
                diverged = true;
                for (int rest = t + 1; rest < steps; rest++) progress?.Invoke();
                break;
            }
        }
        var curve = losses.Flush().ToArray();
        double trainSeconds = loop.Elapsed.TotalSeconds;
        diverged |= curve.Any(v => !double.IsFinite(v));
        var final = diverged ? new Evaluation(double.NaN, double.NaN) : task.Evaluate(model);
        if (!double.IsFinite(final.TrainLoss)) diverged = true;
        return new RunResult(spec.Name, seed, final, curve, diverged, sw.Elapsed.TotalSeconds) { TrainSeconds = trainSeconds, StepsRun = stepsRun };
    }
}
