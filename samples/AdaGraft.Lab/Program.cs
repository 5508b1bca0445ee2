using System;
using System.CommandLine;
using System.IO;
using System.Linq;
using AdaGraft.Lab.Data;
using AdaGraft.Lab.Output;
using AdaGraft.Lab.Training;
using Spectre.Console;

namespace AdaGraft.Lab;

/// <summary>
/// The grafting lab: the paper's N×N grafting table on two tasks, schedule discovery by global grafting, and the
/// appendix D.1 constructions. <c>dotnet run --project samples/AdaGraft.Lab -c Release</c> runs everything on the
/// data shipped in the repository.
/// </summary>
public static class LabProgram
{
    /// <summary>Process entry point: progress bars on an interactive terminal, plain lines when standard output is
    /// redirected (see <see cref="LabConsole.ForStandardOutput"/>).</summary>
    public static int Main(string[] args) => Run(args, LabConsole.ForStandardOutput());

    /// <summary>
    /// Parses <paramref name="args"/> and runs the lab in process, reporting to <paramref name="console"/>; help and
    /// parse errors go to <paramref name="output"/> (standard output/error when null). Returns the exit code.
    /// </summary>
    public static int Run(string[] args, IAnsiConsole console, TextWriter? output = null)
    {
        ArgumentNullException.ThrowIfNull(args);
        ArgumentNullException.ThrowIfNull(console);
        LabSummary? ignored = null;
        return Run(args, console, output, s => ignored = s);
    }

    /// <summary>As <see cref="Run(string[], IAnsiConsole, TextWriter?)"/>, handing the run's summary to <paramref name="onSummary"/>.</summary>
    public static int Run(string[] args, IAnsiConsole console, TextWriter? output, Action<LabSummary> onSummary)
    {
        ArgumentNullException.ThrowIfNull(args);
        ArgumentNullException.ThrowIfNull(console);
        ArgumentNullException.ThrowIfNull(onSummary);

        var quick = new Option<bool>("--quick") { Description = "Seconds-long run: tiny models, few steps, fixed documented learning rates (for tests)." };
        var full = new Option<bool>("--full") { Description = "Longer runs, bigger models, 3 seeds (an hour or more on 2 cores)." };
        var seeds = new Option<int?>("--seeds") { Description = "Runs per cell (mean ± sd over seeds); default 2 (1 with --quick, 3 with --full)." };
        var data = new Option<string?>("--data") { Description = "Fashion-MNIST folder with the four IDX files (.gz or raw), e.g. /usr/share/datasets/fashion-mnist; default: the subset shipped in data/fashion-mnist." };
        var text = new Option<string?>("--text") { Description = "Plain-text file for the language task, at character level; default: a generated random-grammar corpus." };
        var device = new Option<string>("--device") { Description = "cpu or cuda.", DefaultValueFactory = _ => "cpu" };
        device.AcceptOnlyFromAmong("cpu", "cuda");
        var outDir = new Option<string>("--out") { Description = "Output folder.", DefaultValueFactory = _ => "lab-output" };
        var tasks = new Option<string>("--tasks") { Description = $"Comma list of parts: {string.Join(", ", LabParts.All)} (default all, which leaves out the opt-in {LabParts.Preconditioners} except with --quick).", DefaultValueFactory = _ => "all" };
        var schedule = new Option<string>("--schedule") { Description = "Shared learning-rate schedule: warmup-staircase (paper, default), staircase or constant.", DefaultValueFactory = _ => "warmup-staircase" };
        schedule.AcceptOnlyFromAmong("warmup-staircase", "staircase", "constant");
        var threads = new Option<int>("--threads") { Description = "CPU threads for libtorch (default 1: these small models run no faster on 2, and 2 threads slow down badly when other processes share the cores).", DefaultValueFactory = _ => 1 };
        var retune = new Option<bool>("--retune") { Description = "Ignore learning rates cached in the output folder." };

        var root = new RootCommand("AdaGraft grafting lab: N×N grafting table (vision, language), schedule discovery, appendix D.1 constructions.") {
            quick, full, seeds, data, text, device, outDir, tasks, schedule, threads, retune,
        };
        root.SetAction(parse => {
            try {
                var options = new LabOptions {
                    Quick = parse.GetValue(quick),
                    Full = parse.GetValue(full),
                    Seeds = parse.GetValue(seeds),
                    DataDirectory = parse.GetValue(data),
                    TextFile = parse.GetValue(text),
                    Device = parse.GetValue(device) ?? "cpu",
                    OutputDirectory = parse.GetValue(outDir) ?? "lab-output",
                    Parts = LabParts.Parse(parse.GetValue(tasks) ?? "all", parse.GetValue(quick)),
                    Schedule = Schedule.ParseKind(parse.GetValue(schedule) ?? "warmup-staircase"),
                    Threads = parse.GetValue(threads),
                    Retune = parse.GetValue(retune),
                };
                onSummary(LabRunner.Run(options, console));
                return 0;
            } catch (Exception e) when (e is ArgumentException or IOException or InvalidDataException or InvalidOperationException or UnauthorizedAccessException) {
                console.MarkupLine($"[red]error:[/] {Markup.Escape(e.Message)}");
                return 1;
            }
        });

        var from = new Option<string>("--from") { Description = "Folder of the full data set.", DefaultValueFactory = _ => "/usr/share/datasets/fashion-mnist" };
        var to = new Option<string>("--to") { Description = "Folder to write the subset to.", DefaultValueFactory = _ => "data/fashion-mnist" };
        var nTrain = new Option<int>("--train") { Description = "First N training examples.", DefaultValueFactory = _ => 6000 };
        var nTest = new Option<int>("--test") { Description = "First N test examples.", DefaultValueFactory = _ => 1000 };
        var subset = new Command("make-subset", "Cut the first N training and test examples of Fashion-MNIST into new gzip IDX files (how data/fashion-mnist was made).") {
            from, to, nTrain, nTest,
        };
        subset.SetAction(parse => ReportingBadInput(() => {
            var (a, b) = FashionMnist.MakeSubset(parse.GetValue(from)!, parse.GetValue(to)!, parse.GetValue(nTrain), parse.GetValue(nTest));
            console.MarkupLine(Markup.Escape($"wrote {a.Count} training and {b.Count} test examples to {parse.GetValue(to)}"));
        }));
        root.Subcommands.Add(subset);

        var csvPath = new Argument<string>("csv") { Description = "A step-norm CSV (step,tensor,m_norm,d_norm,ratio), e.g. lab-output/discovery-norms.csv." };
        var tensor = new Option<string>("--tensor") { Description = "Which series to fit: a tensor name or __global__.", DefaultValueFactory = _ => AdaGraft.Diagnostics.StepNormRecorder.GlobalName };
        var fitCommand = new Command("fit", "Fit a recorded ratio series to the paper's schedule shapes (linear c0 + c1·t, power law a·t^α, exponential) and report each with R² and the best.") {
            csvPath, tensor,
        };
        fitCommand.SetAction(parse => ReportingBadInput(() => {
            var name = parse.GetValue(tensor)!;
            var series = AdaGraft.Diagnostics.StepNormCsv.Read(parse.GetValue(csvPath)!).Where(r => r.Tensor == name && double.IsFinite(r.Ratio)).OrderBy(r => r.Step).ToArray();
            if (series.Length < 3) throw new InvalidDataException($"The CSV has {series.Length} finite rows for '{name}'; at least 3 are needed.");
            var fits = AdaGraft.Diagnostics.ScheduleFitter.All(series.Select(r => (double)r.Step).ToArray(), series.Select(r => r.Ratio).ToArray());
            var table = new Table().AddColumn("family").AddColumn("fit").AddColumn(new TableColumn("R²").RightAligned());
            foreach (var f in fits) table.AddRow(f.Family.ToString(), Markup.Escape(f.ToString()), f.RSquared.ToString("F4", System.Globalization.CultureInfo.InvariantCulture));
            console.MarkupLine(Markup.Escape($"{series.Length} steps of '{name}' ({series[0].Step}..{series[^1].Step})"));
            console.Write(table);
            console.MarkupLine(Markup.Escape($"best: {fits[0]}"));
        }));
        root.Subcommands.Add(fitCommand);

        var config = new InvocationConfiguration();
        if (output is not null) {
            config.Output = output;
            config.Error = output;
        }
        return root.Parse(args).Invoke(config);

        // A subcommand's body, run: exit code 0 when it completes; 1, with the message printed, when its input is bad.
        int ReportingBadInput(Action body)
        {
            try {
                body();
                return 0;
            } catch (Exception e) when (e is ArgumentException or IOException or InvalidDataException) {
                console.MarkupLine($"[red]error:[/] {Markup.Escape(e.Message)}");
                return 1;
            }
        }
    }
}
