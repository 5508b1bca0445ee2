using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Linq;
using AdaGraft.Lab.Experiments;
using AdaGraft.Lab.Output;
using AdaGraft.Lab.Tasks;
using AdaGraft.Lab.Training;
using FluentAssertions;
using Xunit;
using P = AdaGraft.Lab.Experiments.Preconditioners;

namespace AdaGraft.Lab.Tests;

/// <summary>The preconditioner comparison as the quick lab run (which includes it) produced it.</summary>
public class PreconditionerRunTests : IClassFixture<QuickLabRun>
{
    private readonly QuickLabRun _run;

    public PreconditionerRunTests(QuickLabRun run) => _run = run;

    [Fact]
    public void CsvHasEveryOptimizerOfBothTasksWithFiniteNumbers()
    {
        _run.ExitCode.Should().Be(0, _run.ConsoleText.ToString());
        var lines = File.ReadAllLines(_run.PathOf("preconditioners.csv"));
        lines[0].Should().Be(P.CsvHeader);
        var header = lines[0].Split(',');
        int Col(string name) => Array.IndexOf(header, name);
        // Optimizer names hold no comma, so a plain split is exact here.
        var rows = lines.Skip(1).Where(l => l.Length > 0).Select(l => l.Split(',')).ToList();
        rows.Should().HaveCount(2 * P.Names.Length);
        rows.Should().OnlyContain(r => r.Length == header.Length);
        foreach (var task in new[] { "vision", "language" })
            rows.Where(r => r[Col("task")] == task).Select(r => r[Col("optimizer")]).Should().Equal(P.Names);
        double Num(string[] r, string col)
        {
            double.TryParse(r[Col(col)], NumberStyles.Float, CultureInfo.InvariantCulture, out var v).Should().BeTrue($"{col} of {r[Col("optimizer")]} is a number");
            double.IsFinite(v).Should().BeTrue();
            return v;
        }
        foreach (var r in rows) {
            Num(r, "final_train_loss_mean").Should().BePositive();
            Num(r, "heldout_mean").Should().BeGreaterThanOrEqualTo(0);
            Num(r, "ms_per_step_mean").Should().BePositive();
            Num(r, "lr").Should().Be(P.Fixed(r[Col("task")], r[Col("optimizer")]), "--quick uses the fixed learning rates");
            r[Col("diverged_runs")].Should().Be("0");
        }
    }

    [Fact]
    public void PlainOutputAndReportShowTheTableAndTheGeneratedReading()
    {
        var console = _run.ConsoleText.ToString();
        var r = _run.Summary!.Preconditioners!;
        r.Tables.Select(t => t.Task).Should().Equal("vision", "language");
        foreach (var t in r.Tables)
            foreach (var line in P.TextLines(t)) console.Should().Contain(line);
        var report = File.ReadAllText(_run.PathOf("report.md"));
        report.Should().Contain("## Preconditioners");
        foreach (var line in Reading.Preconditioners(r)) report.Should().Contain(line);
        File.ReadAllText(_run.PathOf("preconditioners.md")).Should().Contain("| optimizer | lr | final training loss | test accuracy | ms per step |");
        File.ReadAllLines(_run.PathOf("preconditioners-curves.csv")).Skip(1)
            .Should().HaveCount(r.Tables.Sum(t => t.Cells.Sum(c => c.Runs.Sum(x => x.Losses.Length))));
    }
}

/// <summary>The part is opt-in outside --quick, and the reading's verdicts follow the numbers.</summary>
public class PreconditionerReadingTests
{
    [Fact]
    public void AllLeavesThePartOutExceptWithQuick()
    {
        LabParts.Parse("all").Should().NotContain(LabParts.Preconditioners).And.Contain(LabParts.TableVision);
        LabParts.Parse("all", quick: true).Should().Contain(LabParts.Preconditioners);
        LabParts.Parse("preconditioners").Should().BeEquivalentTo(new[] { LabParts.Preconditioners });
        new LabOptions().Parts.Should().NotContain(LabParts.Preconditioners);
    }

    private static PreconditionersResult Result(Dictionary<string, double[]> losses, double ms = 2)
    {
        var cells = P.Names.Select(n => new PreconditionerCell(n, new LrChoice("vision", n, 0.01, "fixed", Array.Empty<GridPoint>()),
            losses[n].Select((l, s) => new RunResult(n, s, new Evaluation(l, 0.8), new[] { l }, false, 1) { TrainSeconds = ms / 1000, StepsRun = 1 }).ToList())).ToList();
        return new PreconditionersResult(new[] { new PreconditionerTable("vision", "test", "test accuracy", true, 1, new Schedule(ScheduleKind.Constant, 1), cells) });
    }

    /// <summary>Every optimizer at 0.30 ± 0.01 (two seeds), then <paramref name="change"/> applied.</summary>
    private static Dictionary<string, double[]> Losses(Action<Dictionary<string, double[]>> change)
    {
        var d = P.Names.ToDictionary(n => n, _ => new[] { 0.2929, 0.3071 });
        change(d);
        return d;
    }

    [Fact]
    public void VerdictsFollowTheNumbersMeasuredAgainstSeedNoise()
    {
        // All equal within noise: ungrafted Shampoo does not need grafting, SOAP is as good, the size rule ≈ the graft.
        var same = Reading.Preconditioners(Result(Losses(_ => { })));
        same[0].Should().StartWith("**Shampoo needs grafting** does not hold here");
        same[1].Should().StartWith("**SOAP at least as good as Shampoo#Adam** holds here");
        same[2].Should().StartWith("**Muon's size rule ≈ grafting from Adam** holds here");

        var flipped = Reading.Preconditioners(Result(Losses(d => {
            d[P.Shampoo] = new[] { 0.5, 0.52 };
            d[P.Soap] = new[] { 0.4, 0.41 };
            d[P.MuonMatchRms] = new[] { 0.25, 0.26 };
        })));
        flipped[0].Should().StartWith("**Shampoo needs grafting** holds here").And.Contain("ungrafted Shampoo 0.5100 ± 0.0141 is higher than Shampoo#Adam 0.3000");
        flipped[1].Should().StartWith("**SOAP at least as good as Shampoo#Adam** does not hold here").And.Contain("SOAP 0.4050 ± 0.0071 is higher than");
        flipped[2].Should().StartWith("**Muon's size rule ≈ grafting from Adam** does not hold here").And.Contain("Muon (match-AdamW-RMS) 0.2550 ± 0.0071 is lower than Muon#Adam");
        flipped[3].Should().StartWith("Vision, final training loss lowest first: Muon (match-AdamW-RMS)").And.Contain("Time per step against Adam's 2.0 ms: Shampoo 1.0×");
    }

    [Fact]
    public void ADivergedRunLosesAndOneSeedIsComparedBySign()
    {
        var diverged = Reading.Preconditioners(Result(Losses(d => d[P.Shampoo] = new[] { double.NaN, double.NaN })));
        diverged[0].Should().StartWith("**Shampoo needs grafting** holds here").And.Contain("ungrafted Shampoo diverged, unlike Shampoo#Adam 0.3000");
        var oneSeed = Reading.Preconditioners(Result(P.Names.ToDictionary(n => n, n => new[] { n == P.Soap ? 0.31 : 0.3 })));
        oneSeed[1].Should().StartWith("**SOAP at least as good as Shampoo#Adam** does not hold here");
        oneSeed[3].Should().Contain("one seed: no noise estimate, compared by sign");
    }
}
