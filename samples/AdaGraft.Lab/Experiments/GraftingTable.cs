using System;
using System.Collections.Generic;
using System.Linq;
using AdaGraft.Lab.Tasks;
using AdaGraft.Lab.Training;

namespace AdaGraft.Lab.Experiments;

/// <summary>Mean and sample standard deviation (NaN with fewer than two values; NaN mean when any run diverged).</summary>
public readonly record struct Stat(double Mean, double Sd, int N)
{
    /// <summary>The statistics of <paramref name="values"/>.</summary>
    public static Stat Of(IReadOnlyList<double> values)
    {
        ArgumentNullException.ThrowIfNull(values);
        if (values.Count == 0) return new Stat(double.NaN, double.NaN, 0);
        double mean = values.Average();
        double sd = values.Count < 2 ? double.NaN : Math.Sqrt(values.Sum(v => (v - mean) * (v - mean)) / (values.Count - 1));
        return new Stat(mean, sd, values.Count);
    }

    /// <summary>"0.412 ± 0.010" (or "0.412" for one run, "diverged" for NaN).</summary>
    public string Format(string format, double scale = 1) =>
        !double.IsFinite(Mean) ? "diverged"
        : double.IsFinite(Sd) ? $"{(Mean * scale).ToString(format)} ± {(Sd * scale).ToString(format)}"
        : (Mean * scale).ToString(format);
}

/// <summary>One cell of the N×N table: M, D, M's learning rate and the runs over all seeds.</summary>
public sealed record CellResult(string Task, BaseOptimizer M, BaseOptimizer D, double LrM, IReadOnlyList<RunResult> Runs)
{
    /// <summary>"M#D" or the base optimizer's name.</summary>
    public string Name => BaseOptimizers.CellName(M, D);

    /// <summary>Final training loss over seeds.</summary>
    public Stat TrainLoss => Stat.Of(Runs.Select(r => r.Final.TrainLoss).ToList());

    /// <summary>Held-out metric over seeds.</summary>
    public Stat HeldOut => Stat.Of(Runs.Select(r => r.Final.HeldOut).ToList());

    /// <summary>Runs that diverged.</summary>
    public int Diverged => Runs.Count(r => r.Diverged);
}

/// <summary>The table of a task plus what produced it.</summary>
public sealed record TableResult(string Task, string Description, string HeldOutName, bool HeldOutHigherIsBetter, int Steps,
    Schedule Schedule, IReadOnlyDictionary<BaseOptimizer, LrChoice> LearningRates, IReadOnlyList<CellResult> Cells)
{
    /// <summary>The cell (M, D).</summary>
    public CellResult Cell(BaseOptimizer m, BaseOptimizer d) => Cells.Single(c => c.M == m && c.D == d);

    /// <summary>
    /// How much the final training loss depends on M versus D: the mean over rows (same M) of the spread
    /// (max − min) within the row, and the mean over columns (same D) of the spread within the column. When curves
    /// cluster by M, the within-row spread is small and the within-column spread large.
    /// </summary>
    public (double WithinRows, double WithinColumns) Spreads()
    {
        double Spread(IEnumerable<CellResult> cs)
        {
            var v = cs.Select(c => c.TrainLoss.Mean).ToList();
            return v.Any(x => !double.IsFinite(x)) ? double.NaN : v.Max() - v.Min();
        }
        var rows = BaseOptimizers.All.Select(m => Spread(Cells.Where(c => c.M == m))).ToList();
        var cols = BaseOptimizers.All.Select(d => Spread(Cells.Where(c => c.D == d))).ToList();
        return (rows.Average(), cols.Average());
    }
}

/// <summary>Runs every (M, D) pair over the seeds with the shared schedule and the tuned learning rates.</summary>
public static class GraftingTable
{
    /// <summary>Runs the table. <paramref name="reuse"/> receives every run (for the discovery part to reuse).</summary>
    public static TableResult Run(LabTask task, IReadOnlyDictionary<BaseOptimizer, LrChoice> lrs, Schedule schedule, int seeds, int readEvery,
        Action? progress, Action<string>? status)
    {
        ArgumentNullException.ThrowIfNull(task);
        ArgumentNullException.ThrowIfNull(lrs);
        ArgumentNullException.ThrowIfNull(schedule);
        var cells = new List<CellResult>();
        foreach (var m in BaseOptimizers.All) {
            foreach (var d in BaseOptimizers.All) {
                double lr = lrs[m].Lr;
                var runs = new List<RunResult>();
                for (int s = 0; s < seeds; s++) {
                    status?.Invoke($"{task.Name}: {BaseOptimizers.CellName(m, d)} (seed {s})");
                    var spec = new RunSpec(BaseOptimizers.CellName(m, d), ps => BaseOptimizers.Cell(m, d, ps, lr), schedule);
                    runs.Add(Trainer.Run(task, spec, s, schedule.TotalSteps, readEvery, progress));
                }
                cells.Add(new CellResult(task.Name, m, d, lr, runs));
            }
        }
        return new TableResult(task.Name, task.Description, task.HeldOutName, task.HeldOutHigherIsBetter, schedule.TotalSteps, schedule, lrs, cells);
    }
}
