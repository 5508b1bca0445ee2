using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using System.Text;
using AdaGraft.Lab.Experiments;
using AdaGraft.Lab.Training;

namespace AdaGraft.Lab.Output;

/// <summary>
/// The reading of a lab run, generated from its numbers: what the report says about each part and what the
/// repository README quotes, so that the two cannot disagree. Each sentence is decided by a stated criterion.
/// </summary>
public static class Reading
{
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    private static string F4(double v) => v.ToString("F4", Inv);

    /// <summary>"2.95–2.99" (F2) or "85.5–86.3 %" for accuracies.</summary>
    private static string Range(IEnumerable<double> values, bool percent)
    {
        var v = values.Where(double.IsFinite).ToList();
        if (v.Count == 0) return "diverged";
        return percent
            ? $"{(v.Min() * 100).ToString("F1", Inv)}–{(v.Max() * 100).ToString("F1", Inv)} %"
            : $"{v.Min().ToString("F2", Inv)}–{v.Max().ToString("F2", Inv)}";
    }

    /// <summary>The reading of one N×N table: clustering by M (within-row spread below within-column spread, the
    /// paper's finding), each row's range, the held-out range, and how close the Adam and AdaGrad directions are.</summary>
    public static string Table(TableResult t)
    {
        ArgumentNullException.ThrowIfNull(t);
        var (rows, cols) = t.Spreads();
        string task = char.ToUpperInvariant(t.Task[0]) + t.Task[1..];
        if (!double.IsFinite(rows) || !double.IsFinite(cols))
            return $"**{task}**: a run diverged, so the spreads are undefined; see the table.";
        var sb = new StringBuilder();
        bool byM = rows < cols;
        sb.Append(byM ? $"**{task}: the final loss clusters by M**, as the paper found. " : $"**{task}: no clustering by M** at this scale, unlike the paper. ");
        sb.Append($"The spread of final training loss within a row (same M) averages {F4(rows)} against {F4(cols)} within a column (same D); ");
        sb.Append("rows: ").AppendJoin(", ", BaseOptimizers.All.Select(m => $"M = {BaseOptimizers.Name(m)} {Range(BaseOptimizers.All.Select(d => t.Cell(m, d).TrainLoss.Mean), false)}"));
        sb.Append($". {char.ToUpperInvariant(t.HeldOutName[0])}{t.HeldOutName[1..]}: {Range(t.Cells.Select(c => c.HeldOut.Mean), t.HeldOutHigherIsBetter)}");
        var sds = t.Cells.Select(c => c.HeldOut.Sd).Where(double.IsFinite).ToList();
        if (sds.Count > 0)
            sb.Append(t.HeldOutHigherIsBetter
                ? $" (mean seed-to-seed sd {(sds.Average() * 100).ToString("F1", Inv)} %)"
                : $" (mean seed-to-seed sd {F4(sds.Average())})");
        if (BaseOptimizers.All.Contains(BaseOptimizer.Adam) && BaseOptimizers.All.Contains(BaseOptimizer.AdaGrad)) {
            double gap = BaseOptimizers.All.Max(m => Math.Abs(t.Cell(m, BaseOptimizer.Adam).TrainLoss.Mean - t.Cell(m, BaseOptimizer.AdaGrad).TrainLoss.Mean));
            sb.Append($". The Adam and AdaGrad directions differ by at most {F4(gap)} in final training loss within a row");
        }
        sb.Append('.');
        return sb.ToString();
    }

    /// <summary>The reading of schedule discovery: the fitted correction (rising, as in the paper, when c1 &gt; 0) and
    /// whether it lowered AdaGrad's mean final training loss.</summary>
    public static string Discovery(DiscoveryResult r)
    {
        ArgumentNullException.ThrowIfNull(r);
        var sb = new StringBuilder("**Schedule discovery**: the correction fitted to the SGD#AdaGrad global ratio (divided by AdaGrad's own scheduled rate) is ");
        sb.Append($"c(t) = {r.Fit.A.ToString("G3", Inv)} + {r.Fit.B.ToString("G3", Inv)}·t (R² = {r.Fit.RSquared.ToString("F3", Inv)}), ");
        sb.Append(r.Fit.B > 0 ? "rising over training as in the paper; " : "not rising over training, unlike the paper; ");
        sb.Append(r.Helped ? "applied to AdaGrad it lowered the mean final training loss" : "applied to AdaGrad it did not lower the mean final training loss");
        sb.Append($" ({r.CorrectedLoss.Format("F4")} against plain AdaGrad's {r.AdaGradLoss.Format("F4")}");
        var diffs = r.PairedDifferences;
        if (diffs.Count > 1) sb.Append("; per seed ").AppendJoin(", ", diffs.Select(d => d.ToString("+0.0000;-0.0000", Inv)));
        sb.Append(").");
        return sb.ToString();
    }

    /// <summary>The reading of appendix D.1: as the paper says when gradient descent has the lowest test error on the
    /// least-squares instance and every adaptive method beats SGD on the sparse hinge instance.</summary>
    public static string D1(IReadOnlyList<D1Row> rows)
    {
        ArgumentNullException.ThrowIfNull(rows);
        var adaptive = new[] { "AdaGrad", "RMSprop", "Adam" };
        var a = rows.Where(r => r.Construction.StartsWith("(a)", StringComparison.Ordinal)).ToList();
        var b = rows.Where(r => r.Construction.StartsWith("(b)", StringComparison.Ordinal)).ToList();
        var gd = a.FirstOrDefault(r => r.Optimizer.StartsWith("GD", StringComparison.Ordinal));
        var sgd = b.FirstOrDefault(r => r.Optimizer == "SGD");
        var aAdaptive = a.Where(r => adaptive.Contains(r.Optimizer)).ToList();
        var bAdaptive = b.Where(r => adaptive.Contains(r.Optimizer)).ToList();
        if (gd is null || sgd is null || aAdaptive.Count == 0 || bAdaptive.Count == 0) return "**Appendix D.1**: incomplete (see the tables).";
        bool asPaper = aAdaptive.All(r => gd.TestError < r.TestError) && bAdaptive.All(r => r.TestError < sgd.TestError);
        string Errors(IEnumerable<D1Row> rs) => string.Join(", ", rs.Select(r => $"{r.Optimizer} {r.TestError.ToString("F3", Inv)}"));
        return (asPaper ? "**Appendix D.1 comes out as the paper says**: " : "**Appendix D.1 does not come out as the paper says**: ")
            + $"on the least-squares instance gradient descent's test error (0-1, fresh points) is {gd.TestError.ToString("F3", Inv)} against {Errors(aAdaptive)}; "
            + $"on the sparse hinge instance the expected hinge loss is {Errors(bAdaptive)} against SGD's {sgd.TestError.ToString("F3", Inv)}.";
    }

    /// <summary>
    /// The reading of section 4.1. The paper found the directions nearly indistinguishable once AdaGrad supplies the
    /// step norms; here that holds when the spread of the mean final losses is at most two mean seed-to-seed standard
    /// deviations. Otherwise the text gives the spread relative to the mean loss (called close under 2 %) and to the
    /// seed noise, and the order.
    /// </summary>
    public static string Zoo(ZooResult r)
    {
        ArgumentNullException.ThrowIfNull(r);
        double spread = r.SpreadAcrossDirections, sd = r.MeanSeedSd;
        double mean = r.Cells.Average(c => c.TrainLoss.Mean);
        string order = string.Join(", ", r.Cells.OrderBy(c => c.TrainLoss.Mean).Select(c => $"{c.Direction} {c.TrainLoss.Format("F4")}"));
        var sb = new StringBuilder("**Section 4.1** (M = AdaGrad, four directions): ");
        if (!double.IsFinite(spread)) return sb.Append("a run diverged; see the table.").ToString();
        string relative = $"{F4(spread)} ({(spread / mean).ToString("P1", Inv)} of the mean final loss)";
        if (!double.IsFinite(sd))
            sb.Append($"the mean final training losses spread by {relative}; with one seed there is no seed noise to compare with, so this run cannot say whether the directions are indistinguishable as the paper found. ");
        else if (spread <= 2 * sd)
            sb.Append($"the mean final training losses spread by {relative}, within two mean seed-to-seed standard deviations ({F4(sd)}): indistinguishable within seed noise, as the paper found. ");
        else
            sb.Append($"the mean final training losses spread by {relative}, {(spread / sd).ToString("F1", Inv)} × the mean seed-to-seed sd ({F4(sd)}): "
                + (spread / mean < 0.02 ? "close, but further apart than seed noise, " : "further apart than seed noise, ")
                + "so not indistinguishable as the paper found, at this scale. ");
        sb.Append($"Final training loss, lowest first: {order}.");
        return sb.ToString();
    }

    /// <summary>How a mean final training loss compares with another's, given the seed noise.</summary>
    private enum Versus
    {
        Lower,
        Same,
        Higher,
        Undefined,
    }

    /// <summary>
    /// <paramref name="a"/> against <paramref name="b"/>: lower or higher when the means differ by more than two mean
    /// seed-to-seed standard deviations (<paramref name="noise"/>), the same within that; with one seed (noise NaN) by
    /// sign alone. A diverged run (NaN mean) loses to a finite one.
    /// </summary>
    private static Versus Compare(Stat a, Stat b, double noise)
    {
        bool fa = double.IsFinite(a.Mean), fb = double.IsFinite(b.Mean);
        if (!fa || !fb) return fa ? Versus.Lower : fb ? Versus.Higher : Versus.Undefined;
        double margin = double.IsFinite(noise) ? 2 * noise : 0;
        double d = a.Mean - b.Mean;
        return d < -margin ? Versus.Lower : d > margin ? Versus.Higher : Versus.Same;
    }

    private static string Loss(PreconditionerTable t, string optimizer) => $"{optimizer} {t.Cell(optimizer).TrainLoss.Format("F4")}";

    private static string Noise(PreconditionerTable t) => double.IsFinite(t.MeanSeedSd)
        ? $"seed noise: mean sd {F4(t.MeanSeedSd)}, so differences under {F4(2 * t.MeanSeedSd)} count as none"
        : "one seed: no noise estimate, compared by sign";

    private static string Verdicts(IEnumerable<(string Task, bool Holds, string Detail)> perTask)
    {
        var list = perTask.ToList();
        string Tasks(bool holds) => string.Join(" and ", list.Where(p => p.Holds == holds).Select(p => p.Task));
        string head = list.All(p => p.Holds) ? "holds here" : list.All(p => !p.Holds) ? "does not hold here" : $"holds on {Tasks(true)}, not on {Tasks(false)}";
        return head + " (" + string.Join("; ", list.Select(p => $"{p.Task}: {p.Detail}")) + ")";
    }

    /// <summary>
    /// The reading of the preconditioner comparison against the published trends, each decided per task on the mean
    /// final training loss with differences under two mean seed-to-seed standard deviations counted as none:
    /// <b>Shampoo needs grafting</b> holds when ungrafted Shampoo is higher than both Shampoo#Adam and Shampoo#SGD;
    /// <b>SOAP at least as good as Shampoo#Adam</b> when SOAP is lower or the same; <b>Muon's size rule ≈ grafting from
    /// Adam</b> when Muon with the match-AdamW-RMS rule is the same as Muon#Adam (the original rule reported beside
    /// it). Then per task the order, the best held-out metric and each optimizer's time per step relative to Adam's.
    /// </summary>
    public static IReadOnlyList<string> Preconditioners(PreconditionersResult r)
    {
        ArgumentNullException.ThrowIfNull(r);
        var ts = r.Tables;
        if (ts.Count == 0) return Array.Empty<string>();
        const string A = Experiments.Preconditioners.Adam, Sh = Experiments.Preconditioners.Shampoo, ShA = Experiments.Preconditioners.ShampooAdam,
            ShS = Experiments.Preconditioners.ShampooSgd, So = Experiments.Preconditioners.Soap, MuO = Experiments.Preconditioners.MuonOriginal,
            MuR = Experiments.Preconditioners.MuonMatchRms, MuA = Experiments.Preconditioners.MuonAdam;
        Versus V(PreconditionerTable t, string a, string b) => Compare(t.Cell(a).TrainLoss, t.Cell(b).TrainLoss, t.MeanSeedSd);
        // "A 0.30 is lower than B 0.40", or who diverged.
        string Is(PreconditionerTable t, string a, string b)
        {
            bool da = !double.IsFinite(t.Cell(a).TrainLoss.Mean), db = !double.IsFinite(t.Cell(b).TrainLoss.Mean);
            if (da || db) return da && db ? $"{a} and {b} both diverged" : da ? $"{a} diverged, unlike {Loss(t, b)}" : $"{Loss(t, a)}, while {b} diverged";
            string word = V(t, a, b) switch { Versus.Lower => "lower than", Versus.Higher => "higher than", _ => "the same as" };
            return $"{Loss(t, a)} is {word} {Loss(t, b)}";
        }
        var lines = new List<string>();

        lines.Add("**Shampoo needs grafting** " + Verdicts(ts.Select(t => {
            return (t.Task, V(t, Sh, ShA) == Versus.Higher && V(t, Sh, ShS) == Versus.Higher, $"ungrafted {Is(t, Sh, ShA)}; {Is(t, Sh, ShS)}");
        })) + ".");

        lines.Add("**SOAP at least as good as Shampoo#Adam** " + Verdicts(ts.Select(t => {
            return (t.Task, V(t, So, ShA) is Versus.Lower or Versus.Same, Is(t, So, ShA));
        })) + ".");

        lines.Add("**Muon's size rule ≈ grafting from Adam** " + Verdicts(ts.Select(t => {
            return (t.Task, V(t, MuR, MuA) == Versus.Same, $"{Is(t, MuR, MuA)}; the original rule: {Is(t, MuO, MuA)}");
        })) + ".");

        foreach (var t in ts) {
            string task = char.ToUpperInvariant(t.Task[0]) + t.Task[1..];
            var order = t.Cells.OrderBy(c => double.IsFinite(c.TrainLoss.Mean) ? c.TrainLoss.Mean : double.PositiveInfinity)
                .Select(c => $"{c.Optimizer} {c.TrainLoss.Format("F4")}");
            var held = t.Cells.Where(c => double.IsFinite(c.HeldOut.Mean)).ToList();
            var best = held.Count == 0 ? null : t.HeldOutHigherIsBetter ? held.MaxBy(c => c.HeldOut.Mean) : held.MinBy(c => c.HeldOut.Mean);
            double adamMs = t.Cell(A).MsPerStep.Mean;
            var cost = t.Cells.Where(c => c.Optimizer != A && double.IsFinite(c.MsPerStep.Mean) && adamMs > 0)
                .Select(c => $"{c.Optimizer} {(c.MsPerStep.Mean / adamMs).ToString("F1", Inv)}×");
            lines.Add($"{task}, final training loss lowest first: {string.Join(", ", order)} ({Noise(t)}). "
                + (best is null ? "" : $"Best {t.HeldOutName}: {best.Optimizer} {Reports.HeldOutText(best.HeldOut, t.HeldOutHigherIsBetter)}. ")
                + $"Time per step against Adam's {adamMs.ToString("F1", Inv)} ms: {string.Join(", ", cost)}.");
        }
        return lines;
    }

    /// <summary>The whole reading as Markdown bullets (the parts that ran), ending with how much to trust it.</summary>
    public static string Markdown(IReadOnlyList<TableResult> tables, DiscoveryResult? discovery, IReadOnlyList<D1Row> d1, ZooResult? zoo, int seeds, string profile,
        PreconditionersResult? preconditioners = null)
    {
        ArgumentNullException.ThrowIfNull(tables);
        ArgumentNullException.ThrowIfNull(d1);
        var bullets = new List<string>();
        bullets.AddRange(tables.OrderBy(t => t.Task == "language" ? 0 : 1).Select(Table));
        if (discovery is not null) bullets.Add(Discovery(discovery));
        if (d1.Count > 0) bullets.Add(D1(d1));
        if (zoo is not null) bullets.Add(Zoo(zoo));
        if (preconditioners is not null) bullets.AddRange(Preconditioners(preconditioners).Select(l => "Preconditioners: " + l));
        bullets.Add($"Profile `{profile}`, {seeds} seed(s): short runs, indicative rather than conclusive. Nothing was tuned to agree with the paper.");
        var sb = new StringBuilder("## Reading\n\nGenerated from the numbers below (`Output/Reading.cs`); the README quotes this text.\n\n");
        foreach (var b in bullets) sb.Append("- ").Append(b).Append('\n');
        return sb.Append('\n').ToString();
    }
}
