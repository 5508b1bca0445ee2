using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using System.Text;
using AdaGraft.Grafting;
using AdaGraft.Lab.Tasks;
using AdaGraft.Lab.Training;
using AdaGraft.Optimizers;
using TorchSharp.Modules;
using static TorchSharp.torch.optim;

namespace AdaGraft.Lab.Experiments;

/// <summary>One direction of the section-4.1 run: AdaGrad's step norms, this optimizer's directions, every seed.</summary>
public sealed record ZooCell(string Direction, IReadOnlyList<RunResult> Runs)
{
    /// <summary>Final training loss over seeds.</summary>
    public Stat TrainLoss => Stat.Of(Runs.Select(r => r.Final.TrainLoss).ToList());

    /// <summary>Held-out metric over seeds.</summary>
    public Stat HeldOut => Stat.Of(Runs.Select(r => r.Final.HeldOut).ToList());
}

/// <summary>The section-4.1 run: its cells and the numbers for an honest reading.</summary>
public sealed record ZooResult(string Task, double LrAdaGrad, int Steps, IReadOnlyList<ZooCell> Cells)
{
    /// <summary>Largest minus smallest mean final training loss across directions.</summary>
    public double SpreadAcrossDirections => Cells.Max(c => c.TrainLoss.Mean) - Cells.Min(c => c.TrainLoss.Mean);

    /// <summary>The mean over directions of the seed-to-seed standard deviation (NaN with one seed).</summary>
    public double MeanSeedSd => Cells.Average(c => c.TrainLoss.Sd);
}

/// <summary>
/// Paper section 4.1: M = AdaGrad (its tuned learning rate, the shared schedule) grafted with D ∈ {Adam, Yogi,
/// AMSGrad, Adafactor} (D's learning rate 1; it cancels), per tensor, on the language task. The paper found the
/// curves nearly indistinguishable once AdaGrad supplies the step norms.
/// </summary>
public static class DirectionZoo
{
    /// <summary>The directions, by name.</summary>
    public static readonly (string Name, Func<IEnumerable<Parameter>, Optimizer> Make)[] Directions = {
        ("Adam", ps => GenericSecondMomentOptimizer.Adam(ps, 1, beta1: 0.9, beta2: 0.999, eps: 0)),
        ("Yogi", ps => YogiOptimizer.Create(ps, 1)),
        ("AMSGrad", ps => GenericSecondMomentOptimizer.AmsGrad(ps, 1)),
        ("Adafactor", ps => AdafactorOptimizer.Create(ps, 1, beta1: 0.9)),
    };

    /// <summary>Number of training runs (for progress bars).</summary>
    public static int Runs(int seeds) => Directions.Length * seeds;

    /// <summary>Runs every direction for every seed.</summary>
    public static ZooResult Run(LabTask task, double lrAdaGrad, Schedule schedule, int seeds, int readEvery, Action? progress, Action<string>? status)
    {
        ArgumentNullException.ThrowIfNull(task);
        ArgumentNullException.ThrowIfNull(schedule);
        var cells = new List<ZooCell>();
        foreach (var (name, make) in Directions) {
            var runs = new List<RunResult>();
            for (int seed = 0; seed < seeds; seed++) {
                status?.Invoke($"AdaGrad#{name} (seed {seed})");
                var spec = new RunSpec($"AdaGrad#{name}",
                    ps => new GraftOptimizer(BaseOptimizers.Create(BaseOptimizer.AdaGrad, ps, lrAdaGrad), make(ps), new GraftOptions { OwnsChildren = true }),
                    schedule);
                runs.Add(Trainer.Run(task, spec, seed, schedule.TotalSteps, readEvery, progress));
            }
            cells.Add(new ZooCell(name, runs));
        }
        return new ZooResult(task.Name, lrAdaGrad, schedule.TotalSteps, cells);
    }

    /// <summary>CSV: task, direction, seed, final training loss, held-out.</summary>
    public static string Csv(ZooResult r)
    {
        ArgumentNullException.ThrowIfNull(r);
        var inv = CultureInfo.InvariantCulture;
        var sb = new StringBuilder("task,magnitude,direction,seed,train_loss,held_out\n");
        foreach (var c in r.Cells)
            foreach (var run in c.Runs)
                sb.Append(CultureInfo.InvariantCulture, $"{r.Task},AdaGrad,{c.Direction},{run.Seed},{run.Final.TrainLoss.ToString("R", inv)},{run.Final.HeldOut.ToString("R", inv)}\n");
        return sb.ToString();
    }

    /// <summary>The report's section, with the reading the numbers support (<see cref="AdaGraft.Lab.Output.Reading.Zoo"/>);
    /// the held-out metric formatted as in every other table (a percentage when higher is better).</summary>
    public static string Markdown(ZooResult r, string heldOutName, bool heldOutHigherIsBetter = false)
    {
        ArgumentNullException.ThrowIfNull(r);
        var inv = CultureInfo.InvariantCulture;
        var sb = new StringBuilder("## Section 4.1: AdaGrad's step norms with other directions\n\n");
        sb.Append(inv, $"M = AdaGrad (lr {r.LrAdaGrad.ToString("G3", inv)}, the shared schedule), D ∈ {{Adam, Yogi, AMSGrad, Adafactor}} (lr 1), per-tensor grafting, task `{r.Task}`, {r.Steps} steps.\n\n");
        sb.Append(inv, $"| D | final training loss | {heldOutName} |\n|---|---:|---:|\n");
        foreach (var c in r.Cells) sb.Append(inv, $"| {c.Direction} | {c.TrainLoss.Format("F4")} | {AdaGraft.Lab.Output.Reports.HeldOutText(c.HeldOut, heldOutHigherIsBetter)} |\n");
        sb.Append('\n').Append(AdaGraft.Lab.Output.Reading.Zoo(r)).Append("\n\n");
        sb.Append("Curves: `section41-curves.png`.\n\n");
        return sb.ToString();
    }
}
