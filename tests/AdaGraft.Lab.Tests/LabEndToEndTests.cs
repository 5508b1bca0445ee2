using System;
using System.Buffers.Binary;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Text.RegularExpressions;
using AdaGraft.Lab.Output;
using FluentAssertions;
using Spectre.Console;
using Xunit;

namespace AdaGraft.Lab.Tests;

/// <summary>Runs the whole lab with --quick, in process, into a temporary folder, once for the class.</summary>
public sealed class QuickLabRun : IDisposable
{
    public QuickLabRun()
    {
        Directory = Path.Combine(Path.GetTempPath(), "adagraft-lab-test-" + Guid.NewGuid().ToString("N"));
        ConsoleText = new StringWriter();
        // The console Main uses when standard output is redirected.
        var console = LabConsole.Plain(ConsoleText);
        ExitCode = LabProgram.Run(new[] { "--quick", "--out", Directory }, console, ConsoleText, s => Summary = s);
    }

    public string Directory { get; }

    public StringWriter ConsoleText { get; }

    public int ExitCode { get; }

    public LabSummary? Summary { get; private set; }

    public string PathOf(string name) => Path.Combine(Directory, name);

    public void Dispose()
    {
        try {
            System.IO.Directory.Delete(Directory, recursive: true);
        } catch (IOException) {
            // best effort
        }
    }
}

public class LabEndToEndTests : IClassFixture<QuickLabRun>
{
    private static readonly string[] Optimizers = { "SGD", "Adam", "AdaGrad" };
    private readonly QuickLabRun _run;

    public LabEndToEndTests(QuickLabRun run) => _run = run;

    [Fact]
    public void ExitsWithZeroAndWritesEveryOutput()
    {
        _run.ExitCode.Should().Be(0, _run.ConsoleText.ToString());
        foreach (var f in new[] { "report.md", "grafting-table.md", "grafting-table.csv", "grafting-runs.csv", "grafting-curves.csv",
                     "grafting-curves.png", "discovery-ratio.csv", "discovery-ratio.png", "discovery-curves.png", "d1.csv" })
            File.Exists(_run.PathOf(f)).Should().BeTrue($"{f} should be written");
    }

    [Fact]
    public void CsvHasAllNineCellsOfBothTasksAndParses()
    {
        var lines = File.ReadAllLines(_run.PathOf("grafting-table.csv"));
        lines[0].Should().Be(Reports.TableCsvHeader);
        var header = lines[0].Split(',');
        var rows = lines.Skip(1).Where(l => l.Length > 0).Select(l => l.Split(',')).ToList();
        rows.Should().HaveCount(18);
        rows.Should().OnlyContain(r => r.Length == header.Length);
        int Col(string name) => Array.IndexOf(header, name);
        foreach (var task in new[] { "vision", "language" }) {
            var cells = rows.Where(r => r[Col("task")] == task).Select(r => (r[Col("M")], r[Col("D")])).ToList();
            cells.Should().BeEquivalentTo(Optimizers.SelectMany(m => Optimizers.Select(d => (m, d))));
        }
        foreach (var r in rows) {
            double.Parse(r[Col("final_train_loss_mean")], CultureInfo.InvariantCulture).Should().BePositive();
            double.Parse(r[Col("heldout_mean")], CultureInfo.InvariantCulture).Should().BeGreaterThanOrEqualTo(0);
            double.Parse(r[Col("lr_M")], CultureInfo.InvariantCulture).Should().BePositive();
            r[Col("final_train_loss_sd")].Should().BeEmpty("one seed has no standard deviation");
            int.Parse(r[Col("diverged_runs")], CultureInfo.InvariantCulture).Should().Be(0);
        }
        int taskCol = Col("task"), metric = Col("heldout_metric");
        rows.Where(r => r[taskCol] == "vision").Select(r => r[metric]).Should().OnlyContain(m => m == "test accuracy");
        rows.Where(r => r[taskCol] == "language").Select(r => r[metric]).Should().OnlyContain(m => m == "held-out loss");
    }

    [Fact]
    public void MarkdownHasTheNByNTableOfEachTask()
    {
        var md = File.ReadAllLines(_run.PathOf("grafting-table.md"));
        var headers = md.Select((l, i) => (l, i)).Where(p => p.l.StartsWith("| M \\ D | SGD | Adam | AdaGrad |", StringComparison.Ordinal)).ToList();
        headers.Should().HaveCount(4, "two grids (loss, held-out) per task");
        foreach (var (_, i) in headers) {
            md[i + 1].Should().MatchRegex(@"^\|---\|(---:\|){3}$");
            for (int k = 0; k < 3; k++) {
                var cells = md[i + 2 + k].Split('|', StringSplitOptions.TrimEntries).Where(c => c.Length > 0).ToArray();
                cells.Should().HaveCount(4);
                cells[0].Should().StartWith(Optimizers[k]);
                foreach (var c in cells.Skip(1))
                    double.TryParse(c.TrimEnd('%', ' '), NumberStyles.Float, CultureInfo.InvariantCulture, out var _).Should().BeTrue($"'{c}' is a number");
            }
        }
        File.ReadAllText(_run.PathOf("report.md")).Should().Contain("## Schedule discovery").And.Contain("## Appendix D.1").And.Contain("## Wall time");
    }

    [Theory]
    [InlineData("grafting-curves.png", 1400, 560)]
    [InlineData("discovery-ratio.png", 900, 560)]
    [InlineData("discovery-curves.png", 900, 560)]
    [InlineData("discovery-tensor-ratios.png", 800, 500)]
    [InlineData("section41-curves.png", 900, 560)]
    [InlineData("preconditioners-curves.png", 1400, 560)]
    public void PngsAreValid(string name, int width, int height)
    {
        var bytes = File.ReadAllBytes(_run.PathOf(name));
        bytes.Length.Should().BeGreaterThan(33);
        bytes.Take(8).Should().Equal(0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A);
        BinaryPrimitives.ReadInt32BigEndian(bytes.AsSpan(8, 4)).Should().Be(13, "IHDR's length");
        System.Text.Encoding.ASCII.GetString(bytes, 12, 4).Should().Be("IHDR");
        BinaryPrimitives.ReadInt32BigEndian(bytes.AsSpan(16, 4)).Should().Be(width);
        BinaryPrimitives.ReadInt32BigEndian(bytes.AsSpan(20, 4)).Should().Be(height);
        bytes.Length.Should().BeGreaterThan(5000, "a plot, not an empty image");
    }

    [Fact]
    public void Section41GraftsAdaGradNormsOntoFourDirections()
    {
        var zoo = _run.Summary!.Zoo!;
        zoo.Cells.Select(c => c.Direction).Should().Equal("Adam", "Yogi", "AMSGrad", "Adafactor");
        zoo.Cells.Should().OnlyContain(c => c.Runs.Count == 1 && double.IsFinite(c.Runs[0].Final.TrainLoss) && c.Runs[0].Final.TrainLoss > 0);
        var csv = File.ReadAllLines(_run.PathOf("section41.csv"));
        csv[0].Should().Be("task,magnitude,direction,seed,train_loss,held_out");
        csv.Skip(1).Should().HaveCount(4).And.OnlyContain(l => l.StartsWith("language,AdaGrad,", StringComparison.Ordinal));
        File.ReadAllText(_run.PathOf("report.md")).Should().Contain("## Section 4.1");
        var norms = AdaGraft.Diagnostics.StepNormCsv.Read(_run.PathOf("discovery-norms.csv"));
        norms.Should().Contain(r => r.Tensor == AdaGraft.Diagnostics.StepNormRecorder.GlobalName);
    }

    [Fact]
    public void DiscoveryRecordedEveryStepAndFitted()
    {
        var d = _run.Summary!.Discovery!;
        d.Ratios.Should().HaveCount(d.Graft.Losses.Length).And.OnlyContain(r => double.IsFinite(r) && r > 0);
        d.Fit.Family.Should().Be(AdaGraft.Diagnostics.ScheduleFamily.Linear);
        double.IsFinite(d.Fit.A).Should().BeTrue();
        double.IsFinite(d.Fit.B).Should().BeTrue();
        d.Fit.Points.Should().Be(d.Ratios.Count);
        var lines = File.ReadAllLines(_run.PathOf("discovery-ratio.csv"));
        lines.Should().HaveCount(d.Ratios.Count + 1);
    }

    [Fact]
    public void D1ReportsEveryOptimizerOfBothConstructions()
    {
        var rows = _run.Summary!.D1;
        rows.Where(r => r.Construction.StartsWith("(a)", StringComparison.Ordinal)).Select(r => r.Optimizer)
            .Should().Contain(new[] { "GD (SGD, full batch)", "AdaGrad", "RMSprop", "Adam" });
        rows.Where(r => r.Construction.StartsWith("(b)", StringComparison.Ordinal)).Select(r => r.Optimizer)
            .Should().Contain(new[] { "SGD", "AdaGrad", "RMSprop", "Adam" });
        File.ReadAllLines(_run.PathOf("d1.csv")).Length.Should().Be(rows.Count + 1);
    }

    [Fact]
    public void PrintsTheTablesToTheTerminal()
    {
        var text = _run.ConsoleText.ToString();
        text.Should().Contain("vision").And.Contain("language").And.Contain("AdaGrad (lr").And.Contain("Appendix D.1");
    }
}

public class LabCommandLineTests
{
    private static (int Code, string Text) Run(params string[] args)
    {
        var w = new StringWriter();
        var console = AnsiConsole.Create(new AnsiConsoleSettings { Ansi = AnsiSupport.No, Interactive = InteractionSupport.No, Out = new AnsiConsoleOutput(w) });
        int code = LabProgram.Run(args, console, w);
        return (code, w.ToString());
    }

    [Fact]
    public void HelpListsTheOptions()
    {
        var (code, text) = Run("--help");
        code.Should().Be(0);
        foreach (var o in new[] { "--quick", "--full", "--seeds", "--data", "--text", "--device", "--out", "--tasks", "--schedule" })
            text.Should().Contain(o);
    }

    [Fact]
    public void UnknownTaskIsAClearError()
    {
        var (code, text) = Run("--quick", "--tasks", "table-vision,nonsense", "--out", Path.Combine(Path.GetTempPath(), "adagraft-lab-unused"));
        code.Should().NotBe(0);
        text.Should().Contain("nonsense").And.Contain("table-vision");
    }

    [Fact]
    public void BadScheduleIsRejectedByTheParser()
    {
        var (code, text) = Run("--schedule", "cosine");
        code.Should().NotBe(0);
        text.Should().Contain("cosine");
    }

    [Fact]
    public void MissingDataFolderIsAClearError()
    {
        var (code, text) = Run("--quick", "--tasks", "table-vision", "--data", "/nonexistent/fashion", "--out", Path.Combine(Path.GetTempPath(), "adagraft-lab-unused"));
        code.Should().Be(1);
        text.Should().Contain("/nonexistent/fashion");
    }

    [Fact]
    public void TextFileRunsTheLanguageTableAtCharacterLevel()
    {
        var dir = Path.Combine(Path.GetTempPath(), "adagraft-lab-text-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        try {
            var text = Path.Combine(dir, "corpus.txt");
            File.WriteAllText(text, string.Concat(Enumerable.Range(0, 400).Select(i => $"the {i % 7} cat sat on mat {i % 3}.\n")));
            var (code, output) = Run("--quick", "--tasks", "table-language", "--text", text, "--schedule", "constant", "--out", dir);
            code.Should().Be(0, output);
            var rows = File.ReadAllLines(Path.Combine(dir, "grafting-table.csv")).Skip(1).ToList();
            rows.Should().HaveCount(9).And.OnlyContain(r => r.StartsWith("language,", StringComparison.Ordinal));
            File.ReadAllText(Path.Combine(dir, "grafting-table.md")).Should().Contain("corpus.txt at character level");
        } finally {
            Directory.Delete(dir, recursive: true);
        }
    }
}

/// <summary>One format per quantity across the report's tables, and one generated reading.</summary>
public class LabReportConsistencyTests : IClassFixture<QuickLabRun>
{
    private readonly QuickLabRun _run;

    public LabReportConsistencyTests(QuickLabRun run) => _run = run;

    private static string[] Cells(string row) => row.Split('|', StringSplitOptions.TrimEntries).Where(c => c.Length > 0).ToArray();

    [Fact]
    public void TestAccuracyIsAPercentageInEveryTable()
    {
        var md = File.ReadAllLines(_run.PathOf("report.md"));
        int accuracyGrid = Array.FindIndex(md, l => l.StartsWith("**Test accuracy", StringComparison.Ordinal));
        accuracyGrid.Should().BePositive("the vision table has an accuracy grid");
        var gridRows = md.Skip(accuracyGrid + 4).Take(3).ToList();
        var discoveryHeader = Array.FindIndex(md, l => l.StartsWith("| run | seeds | final training loss |", StringComparison.Ordinal));
        discoveryHeader.Should().BePositive();
        md[discoveryHeader].Should().EndWith("| test accuracy |", "the discovery table names the metric it shows");
        var discoveryRows = md.Skip(discoveryHeader + 2).TakeWhile(l => l.StartsWith('|')).ToList();
        discoveryRows.Should().HaveCount(4);
        var accuracies = gridRows.SelectMany(r => Cells(r).Skip(1)).Concat(discoveryRows.Select(r => Cells(r)[^1])).ToList();
        accuracies.Should().HaveCount(13);
        accuracies.Should().OnlyContain(a => Regex.IsMatch(a, @"^\d{1,3}\.\d( ± \d+\.\d)? %$"), "accuracy is always written as 85.8 % (one decimal, percent)");
        var console = _run.ConsoleText.ToString();
        Regex.Count(console, @"\b\d{1,3}\.\d %").Should().Be(9 + Experiments.Preconditioners.Names.Length,
            "the terminal table shows the nine accuracies the same way, and so do the preconditioner lines of the vision task");
    }

    [Fact]
    public void TheReadingIsGeneratedFromTheRunsNumbersAndStatedOnce()
    {
        var s = _run.Summary!;
        var report = File.ReadAllText(_run.PathOf("report.md"));
        report.Should().Contain("## Reading");
        var zoo = Output.Reading.Zoo(s.Zoo!);
        report.Should().Contain(zoo, "the reading bullet is the generated text");
        Regex.Count(report, Regex.Escape(zoo)).Should().Be(2, "the section-4.1 part repeats the same generated sentence, not a second judgement");
        report.Should().NotContain("unlike the paper's finding");
        foreach (var t in s.Tables) report.Should().Contain(Output.Reading.Table(t));
        report.Should().Contain(Output.Reading.Discovery(s.Discovery!)).And.Contain(Output.Reading.D1(s.D1));
        var (rows, cols) = s.Tables.Single(t => t.Task == "vision").Spreads();
        report.Should().Contain(rows < cols ? "**Vision: the final loss clusters by M**" : "**Vision: no clustering by M**");
    }
}
