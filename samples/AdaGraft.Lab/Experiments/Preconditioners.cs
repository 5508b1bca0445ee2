using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using System.Text;
using AdaGraft.Grafting;
using AdaGraft.Lab.Tasks;
using AdaGraft.Lab.Training;
using AdaGraft.Optimizers;
using AdaGraft.Rules;
using TorchSharp.Modules;
using static TorchSharp.torch.optim;

namespace AdaGraft.Lab.Experiments;

/// <summary>One optimizer of the preconditioner comparison on one task: its tuned learning rate and every seed's run.</summary>
public sealed record PreconditionerCell(string Optimizer, LrChoice Lr, IReadOnlyList<RunResult> Runs)
{
    /// <summary>Final training loss over seeds.</summary>
    public Stat TrainLoss => Stat.Of(Runs.Select(r => r.Final.TrainLoss).ToList());

    /// <summary>Held-out metric over seeds.</summary>
    public Stat HeldOut => Stat.Of(Runs.Select(r => r.Final.HeldOut).ToList());

    /// <summary>Milliseconds per training step (forward, backward, optimizer step) over seeds.</summary>
    public Stat MsPerStep => Stat.Of(Runs.Select(r => r.MsPerStep).ToList());

    /// <summary>Runs that diverged.</summary>
    public int Diverged => Runs.Count(r => r.Diverged);
}

/// <summary>The comparison on one task.</summary>
public sealed record PreconditionerTable(string Task, string Description, string HeldOutName, bool HeldOutHigherIsBetter, int Steps,
    Schedule Schedule, IReadOnlyList<PreconditionerCell> Cells)
{
    /// <summary>The cell of <paramref name="optimizer"/>.</summary>
    public PreconditionerCell Cell(string optimizer) => Cells.Single(c => c.Optimizer == optimizer);

    /// <summary>The mean over optimizers of the seed-to-seed standard deviation of the final training loss (NaN with
    /// one seed): the noise that the reading's comparisons are measured against.</summary>
    public double MeanSeedSd => Cells.Select(c => c.TrainLoss.Sd).Where(double.IsFinite).DefaultIfEmpty(double.NaN).Average();
}

/// <summary>What the comparison produced on every task it ran on.</summary>
public sealed record PreconditionersResult(IReadOnlyList<PreconditionerTable> Tables);

/// <summary>
/// Issue 14's lab part: the matrix preconditioners of this library against Adam, with and without grafting, on the
/// lab's tasks. Every optimizer's global learning rate is tuned on a coarse grid exactly as the base optimizers'
/// (<see cref="LearningRates.TuneAll"/>: short runs, same schedule shape, lowest final training loss, grid extended
/// past a winning edge), then each runs for every seed with the shared schedule.
/// </summary>
public static class Preconditioners
{
    /// <summary>Adam, the lab's (paper form, ε = 0): the reference every preconditioner is compared with.</summary>
    public const string Adam = "Adam";

    /// <summary>Shampoo with no grafting: the preconditioned direction L̃·G̃·R̃ as it is.</summary>
    public const string Shampoo = "Shampoo";

    /// <summary>Shampoo with its internal per-block grafting from Adam (Distributed Shampoo's usual setting).</summary>
    public const string ShampooAdam = "Shampoo#Adam";

    /// <summary>Shampoo with its internal per-block grafting from SGD.</summary>
    public const string ShampooSgd = "Shampoo#SGD";

    /// <summary>SOAP: Adam in the eigenbasis of Shampoo's factors.</summary>
    public const string Soap = "SOAP";

    /// <summary>Muon with Jordan et al.'s size rule √max(1, rows/cols).</summary>
    public const string MuonOriginal = "Muon (original)";

    /// <summary>Muon with Moonlight's size rule 0.2·√max(rows, cols) (match AdamW's update RMS).</summary>
    public const string MuonMatchRms = "Muon (match-AdamW-RMS)";

    /// <summary>Muon sized by exact per-tensor grafting from Adam (<see cref="MuonGraft.FromAdam"/>).</summary>
    public const string MuonAdam = "Muon#Adam";

    /// <summary>The optimizers, in table order.</summary>
    public static readonly string[] Names = { Adam, Shampoo, ShampooAdam, ShampooSgd, Soap, MuonOriginal, MuonMatchRms, MuonAdam };

    /// <summary>Shampoo's settings shared by its three variants: β1 = 0.9 (gradient filter), β2 = 0.999 (factors'
    /// decay, bias-corrected), roots every <see cref="ShampooPreconditionFrequency"/> steps, blocks of at most
    /// <see cref="ShampooBlock"/> per side.</summary>
    public const double ShampooBeta1 = 0.9, ShampooBeta2 = 0.999;

    /// <summary>
    /// Shampoo's ε (added to L̂ and R̂ before the root), for all three variants. Not the library's default 1e-12: with it,
    /// ungrafted Shampoo diverged on the vision task at every learning rate tried (float32 eigendecompositions of
    /// nearly singular factors; the grafted variants only rescale that direction), a numerical failure that would say
    /// nothing about step sizes, which is what grafting is for.
    /// </summary>
    public const double ShampooEpsilon = 1e-8;

    /// <summary>Steps between Shampoo's root computations (and SOAP's basis refreshes, its reference default).</summary>
    public const int ShampooPreconditionFrequency = 10;

    /// <summary>Shampoo's largest block side (the lab's 784- and 1,000-wide matrices are split rather than rooted whole).</summary>
    public const int ShampooBlock = 256;

    /// <summary>Each optimizer's coarse grid on <paramref name="task"/>: four values ≈ ×3 apart. Those whose steps have
    /// Adam's size (Adam, Shampoo#Adam, SOAP, Muon with the match-AdamW-RMS rule, Muon#Adam) use Adam's grid; SGD-sized
    /// Shampoo#SGD uses ten times SGD's (its β1 filter averages where the lab's heavy ball sums, ≈ ×10 in step size);
    /// ungrafted Shampoo and Muon's original rule (steps of RMS ≈ 1/√width) a grid ten times Adam's.</summary>
    public static double[] Grid(string task, string optimizer)
    {
        ArgumentNullException.ThrowIfNull(optimizer);
        var adam = LearningRates.Grid(task, BaseOptimizer.Adam);
        return optimizer switch {
            Shampoo or MuonOriginal => adam.Select(v => v * 10).ToArray(),
            ShampooSgd => LearningRates.Grid(task, BaseOptimizer.Sgd).Select(v => v * 10).ToArray(),
            _ when Names.Contains(optimizer) => adam,
            _ => throw new ArgumentOutOfRangeException(nameof(optimizer), optimizer, $"Unknown optimizer; use one of {string.Join(", ", Names)}."),
        };
    }

    /// <summary>The fixed learning rates of <c>--quick</c> (no tuning): each grid's lowest value.</summary>
    public static double Fixed(string task, string optimizer) => Grid(task, optimizer)[0];

    private static ShampooOptimizer CreateShampoo(IEnumerable<Parameter> ps, double lr, ShampooGrafting grafting) =>
        ShampooOptimizer.Create(ps, lr, beta1: ShampooBeta1, beta2: ShampooBeta2, epsilon: ShampooEpsilon, precondition_frequency: ShampooPreconditionFrequency,
            max_preconditioner_dim: ShampooBlock, grafting: grafting, grafting_beta2: 0.999);

    /// <summary>
    /// The optimizer <paramref name="name"/> over <paramref name="ps"/> with global learning rate <paramref name="lr"/>.
    /// Muon orthogonalises the matrices and sends every other parameter to its fallback AdamW groups
    /// (<see cref="MuonOptimizer.SplitByRank(IEnumerable{Parameter}, double?)"/>), no weight decay: with the original
    /// rule the AdamW groups take <paramref name="adamLr"/> (Adam's tuned learning rate; the original rule's steps are
    /// not Adam-sized), with the match-AdamW-RMS rule they share <paramref name="lr"/> (the rule's purpose). SOAP has
    /// the reference's defaults except weight decay 0 (no optimizer here decays weights).
    /// </summary>
    public static Optimizer Create(string name, IReadOnlyList<Parameter> ps, double lr, double adamLr) => name switch {
        Adam => BaseOptimizers.Create(BaseOptimizer.Adam, ps, lr),
        Shampoo => CreateShampoo(ps, lr, ShampooGrafting.None),
        ShampooAdam => CreateShampoo(ps, lr, ShampooGrafting.Adam),
        ShampooSgd => CreateShampoo(ps, lr, ShampooGrafting.Sgd),
        Soap => SoapOptimizer.Create(ps, lr, weight_decay: 0),
        MuonOriginal => MuonOptimizer.CreateWithAdamW(ps, lr, weight_decay: 0, adjust_lr_fn: MuonSizeRule.Original, adamw_lr: adamLr),
        MuonMatchRms => MuonOptimizer.CreateWithAdamW(ps, lr, weight_decay: 0, adjust_lr_fn: MuonSizeRule.MatchAdamWRms),
        MuonAdam => MuonGraft.FromAdam(ps, lr),
        _ => throw new ArgumentOutOfRangeException(nameof(name), name, $"Unknown optimizer; use one of {string.Join(", ", Names)}."),
    };

    /// <summary>Total grid points of a task (for progress bars).</summary>
    public static int GridPoints(string task) => Names.Sum(n => Grid(task, n).Length);

    /// <summary>
    /// Tunes (or, with <paramref name="tuneSteps"/> 0, fixes) every optimizer's learning rate on <paramref name="task"/>,
    /// Adam first (Muon's original rule gives its AdamW groups Adam's choice), then runs each for every seed.
    /// </summary>
    public static PreconditionerTable Run(LabTask task, Schedule schedule, int seeds, int tuneSteps, int readEvery, string cachePath, bool retune,
        Action? progress, Action<string>? status, Action<int>? grow)
    {
        ArgumentNullException.ThrowIfNull(task);
        ArgumentNullException.ThrowIfNull(schedule);
        double adamLr = double.NaN;
        Dictionary<string, LrChoice> lrs;
        if (tuneSteps > 0) {
            var candidates = Names.Select(n => new TuneCandidate(n, Grid(task.Name, n), (ps, lr) => Create(n, ps, lr, adamLr)));
            lrs = LearningRates.TuneAll(task, candidates, schedule, tuneSteps, seed: 0, readEvery, cachePath, retune, progress, status, grow,
                chosen: c => { if (c.Optimizer == Adam) adamLr = c.Lr; });
        } else {
            lrs = Names.ToDictionary(n => n, n => new LrChoice(task.Name, n, Fixed(task.Name, n), "fixed (--quick)", Array.Empty<GridPoint>()));
            adamLr = lrs[Adam].Lr;
        }
        var cells = new List<PreconditionerCell>();
        foreach (var name in Names) {
            double lr = lrs[name].Lr;
            var runs = new List<RunResult>();
            for (int s = 0; s < seeds; s++) {
                status?.Invoke($"{task.Name} preconditioners: {name} (seed {s})");
                runs.Add(Trainer.Run(task, new RunSpec(name, ps => Create(name, ps, lr, adamLr), schedule), s, schedule.TotalSteps, readEvery, progress));
            }
            cells.Add(new PreconditionerCell(name, lrs[name], runs));
        }
        return new PreconditionerTable(task.Name, task.Description, task.HeldOutName, task.HeldOutHigherIsBetter, schedule.TotalSteps, schedule, cells);
    }

    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    /// <summary>The CSV header of <see cref="Csv"/>.</summary>
    public const string CsvHeader = "task,optimizer,lr,lr_how,seeds,steps,final_train_loss_mean,final_train_loss_sd,heldout_metric,heldout_mean,heldout_sd,ms_per_step_mean,ms_per_step_sd,diverged_runs";

    private static string Num(double v) => AdaGraft.Lab.Output.Reports.Num(v);

    private static string Quote(string s) => AdaGraft.Lab.Output.Reports.Csv(s);

    /// <summary>One row per task and optimizer (sd empty with one seed).</summary>
    public static string Csv(PreconditionersResult r)
    {
        ArgumentNullException.ThrowIfNull(r);
        return AdaGraft.Lab.Output.Reports.CsvText(CsvHeader,
            from t in r.Tables
            from c in t.Cells
            select new object?[] {
                t.Task, Quote(c.Optimizer), Num(c.Lr.Lr), Quote(c.Lr.How), c.Runs.Count, t.Steps, Num(c.TrainLoss.Mean), Num(c.TrainLoss.Sd),
                Quote(t.HeldOutName), Num(c.HeldOut.Mean), Num(c.HeldOut.Sd), Num(c.MsPerStep.Mean), Num(c.MsPerStep.Sd), c.Diverged,
            });
    }

    /// <summary>Every recorded training loss (task, optimizer, seed, step, loss).</summary>
    public static string CurvesCsv(PreconditionersResult r)
    {
        ArgumentNullException.ThrowIfNull(r);
        return AdaGraft.Lab.Output.Reports.CsvText("task,optimizer,seed,step,train_loss",
            from t in r.Tables
            from c in t.Cells
            from run in c.Runs
            from i in Enumerable.Range(0, run.Losses.Length)
            select new object?[] { t.Task, Quote(c.Optimizer), run.Seed, i, Num(run.Losses[i]) });
    }

    /// <summary>One line per optimizer, the same columns as the Markdown table, for the plain-text output.</summary>
    public static IEnumerable<string> TextLines(PreconditionerTable t)
    {
        ArgumentNullException.ThrowIfNull(t);
        int w = Names.Max(n => n.Length);
        yield return $"{t.Task}: {t.Steps} steps, {t.Cells[0].Runs.Count} seed(s), schedule {Schedule.Name(t.Schedule.Kind)}; final training loss | {t.HeldOutName} | ms per step | lr";
        foreach (var c in t.Cells)
            yield return $"  {c.Optimizer.PadRight(w)}  {c.TrainLoss.Format("F4"),-18} {AdaGraft.Lab.Output.Reports.HeldOutText(c.HeldOut, t.HeldOutHigherIsBetter),-18} {c.MsPerStep.Format("F1"),-14} {c.Lr.Lr.ToString("G3", Inv)}";
    }

    /// <summary>The report's section: settings, one table per task, the learning rates and their grids, the reading.</summary>
    public static string Markdown(PreconditionersResult r, double? tuneFraction)
    {
        ArgumentNullException.ThrowIfNull(r);
        var sb = new StringBuilder("## Preconditioners: Shampoo, SOAP and Muon, with and without grafting\n\n");
        sb.Append(Inv, $"Shampoo: β1 = {ShampooBeta1}, β2 = {ShampooBeta2}, ε = {ShampooEpsilon.ToString("0e0", Inv)} (the library's default 1e-12 made ungrafted Shampoo diverge numerically), roots every {ShampooPreconditionFrequency} steps, blocks of at most {ShampooBlock} per side; ");
        sb.Append("grafting none, per-block Adam (β2 0.999) or per-block SGD. SOAP: the reference's defaults (betas 0.95, 0.95, basis refresh every 10 steps) with weight decay 0. ");
        sb.Append("Muon: momentum 0.95 Nesterov, 5 Newton–Schulz steps, no weight decay; matrices only, every other parameter in its fallback AdamW group (`MuonOptimizer.SplitByRank`) ");
        sb.Append("at Adam's tuned learning rate (original rule) or at Muon's own (match-AdamW-RMS rule); Muon#Adam is `MuonGraft.FromAdam`: per-tensor graft, M = Adam, D = Muon without size rule. ");
        sb.Append(tuneFraction is double f
            ? $"Each optimizer's learning rate was tuned per task on its coarse grid like the base optimizers' (short runs of {f:P0} of the length, seed 0, lowest final training loss, grid extended past a winning edge at most twice).\n\n"
            : "Fixed learning rates (`--quick`: each grid's lowest value).\n\n");
        foreach (var t in r.Tables) {
            sb.Append("### ").Append(t.Task).Append("\n\n").Append(t.Description).Append(".  \n");
            sb.Append(Inv, $"{t.Steps} steps, schedule {Schedule.Name(t.Schedule.Kind)}, {t.Cells[0].Runs.Count} seed(s), mean ± sd over seeds; time per step is the training loop's wall time (forward, backward, step) over its steps.\n\n");
            sb.Append($"| optimizer | lr | final training loss | {t.HeldOutName} | ms per step |\n|---|---:|---:|---:|---:|\n");
            foreach (var c in t.Cells)
                sb.Append($"| {c.Optimizer} | {c.Lr.Lr.ToString("G3", Inv)} | {c.TrainLoss.Format("F4")} | {AdaGraft.Lab.Output.Reports.HeldOutText(c.HeldOut, t.HeldOutHigherIsBetter)} | {c.MsPerStep.Format("F1")} |\n");
            sb.Append("\n| optimizer | how | grid: final training loss of the short run |\n|---|---|---|\n");
            foreach (var c in t.Cells) {
                var grid = c.Lr.Grid.Count == 0 ? "–" : string.Join("; ", c.Lr.Grid.Select(g => $"{g.Lr.ToString("G3", Inv)}: {(g.Diverged ? "diverged" : g.TrainLoss.ToString("F4", Inv))}"));
                sb.Append($"| {c.Optimizer} | {c.Lr.How} | {grid} |\n");
            }
            sb.Append('\n');
        }
        sb.Append("**Reading** (generated from these numbers, `Reading.Preconditioners`):\n\n");
        foreach (var line in AdaGraft.Lab.Output.Reading.Preconditioners(r)) sb.Append("- ").Append(line).Append('\n');
        sb.Append("\nCurves: `preconditioners-curves.png` (seed 0); every run's loss per step: `preconditioners-curves.csv`.\n\n");
        return sb.ToString();
    }
}
