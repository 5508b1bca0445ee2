using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Text;
using AdaGraft.Lab.Experiments;
using AdaGraft.Lab.Training;
using Spectre.Console;

namespace AdaGraft.Lab.Output;

/// <summary>Markdown, CSV and terminal renderings of the lab's results.</summary>
public static class Reports
{
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    /// <summary>The CSV header of <see cref="TableCsv"/>.</summary>
    public const string TableCsvHeader = "task,M,D,cell,lr_M,seeds,steps,final_train_loss_mean,final_train_loss_sd,heldout_metric,heldout_mean,heldout_sd,diverged_runs";

    /// <summary>A CSV number: round-trip invariant text, empty when not finite.</summary>
    internal static string Num(double v) => double.IsFinite(v) ? v.ToString("R", Inv) : "";

    /// <summary>A CSV field, quoted when it holds a comma or a quote.</summary>
    internal static string Csv(string s) => s.Contains(',', StringComparison.Ordinal) || s.Contains('"', StringComparison.Ordinal)
        ? "\"" + s.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"" : s;

    /// <summary>
    /// A CSV text: the header line, then one line per row, its fields joined by commas as
    /// <see cref="StringBuilder.AppendJoin(char, object?[])"/> writes them (the caller formats numbers and quotes text).
    /// </summary>
    internal static string CsvText(string header, IEnumerable<object?[]> rows)
    {
        var sb = new StringBuilder(header).Append('\n');
        foreach (var row in rows) sb.AppendJoin(',', row).Append('\n');
        return sb.ToString();
    }

    /// <summary>One row per cell per task (sd empty with one seed).</summary>
    public static string TableCsv(IEnumerable<TableResult> tables)
    {
        ArgumentNullException.ThrowIfNull(tables);
        return CsvText(TableCsvHeader,
            from t in tables
            from c in t.Cells
            select new object?[] {
                t.Task, BaseOptimizers.Name(c.M), BaseOptimizers.Name(c.D), Csv(c.Name), Num(c.LrM), c.Runs.Count, t.Steps,
                Num(c.TrainLoss.Mean), Num(c.TrainLoss.Sd), Csv(t.HeldOutName), Num(c.HeldOut.Mean), Num(c.HeldOut.Sd), c.Diverged,
            });
    }

    /// <summary>One row per run (seed).</summary>
    public static string RunsCsv(IEnumerable<TableResult> tables)
    {
        ArgumentNullException.ThrowIfNull(tables);
        return CsvText("task,cell,seed,final_train_loss,heldout,diverged,seconds",
            Runs(tables).Select(x => new object?[] { x.Task, x.Cell, x.Run.Seed, Num(x.Run.Final.TrainLoss), Num(x.Run.Final.HeldOut), x.Run.Diverged, x.Run.Seconds.ToString("F2", Inv) }));
    }

    /// <summary>Every recorded training loss (task, cell, seed, step, loss).</summary>
    public static string CurvesCsv(IEnumerable<TableResult> tables)
    {
        ArgumentNullException.ThrowIfNull(tables);
        return CsvText("task,cell,seed,step,train_loss",
            Runs(tables).SelectMany(x => x.Run.Losses.Select((loss, i) => new object?[] { x.Task, x.Cell, x.Run.Seed, i, Num(loss) })));
    }

    /// <summary>Every run of every cell of every table, in table, cell and seed order, with its task and CSV-quoted cell name.</summary>
    private static IEnumerable<(string Task, string Cell, RunResult Run)> Runs(IEnumerable<TableResult> tables) =>
        from t in tables from c in t.Cells from r in c.Runs select (t.Task, Csv(c.Name), r);

    /// <summary>The one format of a held-out metric in every table: accuracies (higher is better) as "85.8 %" (or
    /// "85.8 ± 0.3 %"), losses as "2.9932" (or "2.9932 ± 0.0256").</summary>
    public static string HeldOutText(Stat s, bool higherIsBetter) =>
        higherIsBetter ? s.Format("F1", 100) + (double.IsFinite(s.Mean) ? " %" : "") : s.Format("F4");

    private static string HeldOutText(TableResult t, Stat s) => HeldOutText(s, t.HeldOutHigherIsBetter);

    /// <summary>The N×N tables of one task as Markdown: final training loss and the held-out metric.</summary>
    public static string TableMarkdown(TableResult t)
    {
        ArgumentNullException.ThrowIfNull(t);
        var sb = new StringBuilder();
        sb.Append("### ").Append(t.Task).Append("\n\n");
        sb.Append(t.Description).Append(".  \n");
        sb.Append($"{t.Steps} steps, schedule {Schedule.Name(t.Schedule.Kind)}, {t.Cells[0].Runs.Count} seed(s); rows M (magnitude, its tuned learning rate), columns D (direction, lr 1); the diagonal is the base optimizer itself.\n\n");
        void Grid(string title, Func<CellResult, string> cell)
        {
            sb.Append("**").Append(title).Append("**\n\n");
            sb.Append("| M \\ D | ").AppendJoin(" | ", BaseOptimizers.All.Select(BaseOptimizers.Name)).Append(" |\n");
            sb.Append("|---|").Append(string.Concat(Enumerable.Repeat("---:|", BaseOptimizers.All.Length))).Append('\n');
            foreach (var m in BaseOptimizers.All) {
                sb.Append($"| {BaseOptimizers.Name(m)} (lr {t.LearningRates[m].Lr.ToString("G3", Inv)}) | ");
                sb.AppendJoin(" | ", BaseOptimizers.All.Select(d => cell(t.Cell(m, d)))).Append(" |\n");
            }
            sb.Append('\n');
        }
        Grid("Final training loss (mean ± sd over seeds)", c => c.TrainLoss.Format("F4"));
        Grid($"{char.ToUpperInvariant(t.HeldOutName[0])}{t.HeldOutName[1..]} (mean ± sd over seeds)", c => HeldOutText(t, c.HeldOut));
        var (rows, cols) = t.Spreads();
        sb.Append($"Spread of final training loss (max − min), averaged: within rows (same M, D varies) **{rows.ToString("F4", Inv)}**, within columns (same D, M varies) **{cols.ToString("F4", Inv)}**. ");
        sb.Append(double.IsFinite(rows) && double.IsFinite(cols)
            ? (rows < cols ? "Smaller within rows: by this measure the final loss is set more by M than by D.\n\n" : "Not smaller within rows: by this measure the final loss is not set mainly by M here.\n\n")
            : "(a diverged run makes the spread undefined)\n\n");
        return sb.ToString();
    }

    /// <summary>The learning-rate choices (and grids) as Markdown.</summary>
    public static string LearningRatesMarkdown(IEnumerable<TableResult> tables, double? tuneFraction)
    {
        ArgumentNullException.ThrowIfNull(tables);
        var sb = new StringBuilder("## Global learning rates\n\n");
        sb.Append(tuneFraction is double f
            ? $"Each base optimizer's global learning rate was chosen once per task from a coarse grid by the lowest final training loss of a short run ({f:P0} of a table run, same schedule shape, seed 0), the grid extended past an edge that won (at most twice); cached in `lr-tuning.json`. It is then used untouched wherever that optimizer is M. D's learning rate is 1 (it cancels).\n\n"
            : "Fixed learning rates (`--quick`: no tuning; see `LearningRates.Fixed`).\n\n");
        sb.Append("| task | optimizer | lr | how | grid: final training loss of the short run |\n|---|---|---:|---|---|\n");
        foreach (var t in tables)
            foreach (var m in BaseOptimizers.All) {
                var c = t.LearningRates[m];
                var grid = c.Grid.Count == 0 ? "–" : string.Join("; ", c.Grid.Select(g => $"{g.Lr.ToString("G3", Inv)}: {(g.Diverged ? "diverged" : g.TrainLoss.ToString("F4", Inv))}"));
                sb.Append($"| {t.Task} | {c.Optimizer} | {c.Lr.ToString("G3", Inv)} | {c.How} | {grid} |\n");
            }
        sb.Append('\n');
        return sb.ToString();
    }

    /// <summary>Discovery as Markdown (held-out column: the vision task's test accuracy, in percent).</summary>
    public static string DiscoveryMarkdown(DiscoveryResult r) => DiscoveryMarkdown(r, "test accuracy", true);

    /// <summary>Discovery as Markdown, the held-out metric named <paramref name="heldOutName"/> and formatted as in
    /// every other table (<see cref="HeldOutText(Stat, bool)"/>).</summary>
    public static string DiscoveryMarkdown(DiscoveryResult r, string heldOutName, bool heldOutHigherIsBetter)
    {
        ArgumentNullException.ThrowIfNull(r);
        var sb = new StringBuilder("## Schedule discovery (section 3.4)\n\n");
        sb.Append($"Global grafting M = SGD (lr {r.LrSgd.ToString("G3", Inv)}), D = AdaGrad (lr 1) on the {r.Task} task with the shared schedule. ");
        sb.Append($"The global ratio ‖ΔM‖/‖ΔD‖ was copied into a device buffer every step and read to the host every {r.ReadEvery} steps. ");
        sb.Append($"Dividing it by AdaGrad's own scheduled learning rate (lr {r.LrAdaGrad.ToString("G3", Inv)} × schedule(t)) gives the correction c(t) that AdaGrad would need to take the graft's steps; a least-squares line through c(t) over {r.Fit.Points} steps:\n\n");
        sb.Append($"- **c0 = {r.Fit.A.ToString("G4", Inv)}, c1 = {r.Fit.B.ToString("G4", Inv)} per step, R² = {r.Fit.RSquared.ToString("F3", Inv)}** (t counts optimizer steps from 1)\n");
        sb.Append($"- corrected AdaGrad: lr {r.LrAdaGrad.ToString("G3", Inv)} × schedule(t) × max(c0 + c1·t, 0)\n\n");
        sb.Append($"| run | seeds | final training loss | {heldOutName} |\n|---|---:|---:|---:|\n");
        void Row(string name, IReadOnlyList<RunResult> runs)
        {
            var loss = Stat.Of(runs.Select(x => x.Final.TrainLoss).ToList());
            var held = Stat.Of(runs.Select(x => x.Final.HeldOut).ToList());
            sb.Append($"| {name} | {runs.Count} | {loss.Format("F4")} | {HeldOutText(held, heldOutHigherIsBetter)} |\n");
        }
        Row("SGD", r.Sgd);
        Row("AdaGrad", r.AdaGrad);
        Row("SGD#AdaGrad (global graft, the correction's source)", new[] { r.Graft });
        Row("AdaGrad (corrected)", r.Corrected);
        var diffs = r.PairedDifferences;
        sb.Append('\n').Append(r.Helped
            ? $"Corrected AdaGrad's mean final training loss is **lower** than plain AdaGrad's ({r.CorrectedLoss.Format("F4")} vs {r.AdaGradLoss.Format("F4")}). "
            : $"Corrected AdaGrad's mean final training loss is **not lower** than plain AdaGrad's ({r.CorrectedLoss.Format("F4")} vs {r.AdaGradLoss.Format("F4")}). ");
        sb.Append($"Per seed, corrected − plain: {string.Join(", ", diffs.Select(d => d.ToString("+0.0000;-0.0000", Inv)))}");
        sb.Append(diffs.Count > 1 && diffs.All(d => d < 0) ? " (lower on every seed).\n\n" : diffs.Count > 1 && diffs.Any(d => d < 0) && diffs.Any(d => d > 0) ? " (mixed across seeds: within noise).\n\n" : ".\n\n");
        return sb.ToString();
    }

    /// <summary>Recorded ratios and corrections per step.</summary>
    public static string DiscoveryCsv(DiscoveryResult r)
    {
        ArgumentNullException.ThrowIfNull(r);
        return CsvText("step,global_ratio,correction,fit",
            Enumerable.Range(0, r.Ratios.Count).Select(t => new object?[] { t, Num(r.Ratios[t]), Num(r.Correction[t]), Num(r.FitAt(t)) }));
    }

    /// <summary>Appendix D.1 rows as Markdown.</summary>
    public static string D1Markdown(IReadOnlyList<D1Row> rows)
    {
        ArgumentNullException.ThrowIfNull(rows);
        var sb = new StringBuilder("## Appendix D.1 constructions\n\n");
        foreach (var g in rows.GroupBy(r => r.Construction)) {
            sb.Append("### ").Append(g.Key).Append("\n\n| optimizer | setting | steps | final training loss | test error | test error is | notes |\n|---|---|---:|---:|---:|---|---|\n");
            foreach (var r in g)
                sb.Append($"| {r.Optimizer} | {r.Setting} | {r.Steps} | {(double.IsFinite(r.TrainLoss) ? r.TrainLoss.ToString("G4", Inv) : "–")} | {r.TestError.ToString("F3", Inv)} | {r.TestErrorMeaning} | {r.Extra} |\n");
            sb.Append('\n');
        }
        return sb.ToString();
    }

    /// <summary>Appendix D.1 rows as CSV.</summary>
    public static string D1Csv(IReadOnlyList<D1Row> rows)
    {
        ArgumentNullException.ThrowIfNull(rows);
        return CsvText("construction,optimizer,setting,steps,final_train_loss,test_error,test_error_is,notes",
            rows.Select(r => new object?[] { Csv(r.Construction), Csv(r.Optimizer), Csv(r.Setting), r.Steps, Num(r.TrainLoss), Num(r.TestError), Csv(r.TestErrorMeaning), Csv(r.Extra) }));
    }

    /// <summary>The line printed under <see cref="TableConsole"/> (not a table caption, which would wrap at the table's width).</summary>
    public static string TableConsoleCaption(TableResult t)
    {
        ArgumentNullException.ThrowIfNull(t);
        return $"{t.Task}: {t.Steps} steps, {t.Cells[0].Runs.Count} seed(s), schedule {Schedule.Name(t.Schedule.Kind)}; rows M, columns D; each cell: final training loss, then {t.HeldOutName}";
    }

    /// <summary>The N×N table of one task for the terminal.</summary>
    public static Table TableConsole(TableResult t)
    {
        ArgumentNullException.ThrowIfNull(t);
        var table = new Table().Border(TableBorder.Rounded)
            .Title($"[bold]{Markup.Escape(t.Task)}[/]: final training loss / {Markup.Escape(t.HeldOutName)}");
        table.AddColumn("M \\ D");
        foreach (var d in BaseOptimizers.All) table.AddColumn(new TableColumn(BaseOptimizers.Name(d)).RightAligned());
        foreach (var m in BaseOptimizers.All) {
            var cells = new List<string> { Markup.Escape($"{BaseOptimizers.Name(m)} (lr {t.LearningRates[m].Lr.ToString("G3", Inv)})") };
            foreach (var d in BaseOptimizers.All) {
                var c = t.Cell(m, d);
                cells.Add(Markup.Escape($"{c.TrainLoss.Format("F4")}\n{HeldOutText(t, c.HeldOut)}"));
            }
            table.AddRow(cells.ToArray());
        }
        return table;
    }
}
