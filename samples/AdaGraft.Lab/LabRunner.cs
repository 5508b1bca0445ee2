using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Linq;
using System.Text;
using AdaGraft.Lab.Data;
using AdaGraft.Lab.Experiments;
using AdaGraft.Lab.Output;
using AdaGraft.Lab.Tasks;
using AdaGraft.Lab.Training;
using Spectre.Console;
using TorchSharp;
using static TorchSharp.torch;

namespace AdaGraft.Lab;

/// <summary>What a lab run produced (for callers and tests).</summary>
public sealed record LabSummary(
    string OutputDirectory,
    IReadOnlyList<TableResult> Tables,
    DiscoveryResult? Discovery,
    IReadOnlyList<D1Row> D1,
    double Seconds)
{
    /// <summary>The section-4.1 run (null when not selected).</summary>
    public ZooResult? Zoo { get; init; }

    /// <summary>The preconditioner comparison (null when not selected).</summary>
    public PreconditionersResult? Preconditioners { get; init; }
}

/// <summary>Runs the selected parts of the lab and writes the outputs.</summary>
public static class LabRunner
{
    /// <summary>Runs the lab with <paramref name="options"/>, reporting to <paramref name="console"/>.</summary>
    public static LabSummary Run(LabOptions options, IAnsiConsole console)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(console);
        var total = Stopwatch.StartNew();
        var profile = LabProfile.For(options);
        int seeds = options.Seeds ?? profile.Seeds;
        if (seeds < 1) throw new ArgumentOutOfRangeException(nameof(options), seeds, "--seeds must be at least 1.");
        if (options.Threads < 1) throw new ArgumentOutOfRangeException(nameof(options), options.Threads, "--threads must be at least 1.");
        var device = ResolveDevice(options.Device);
        torch.set_num_threads(options.Threads);
        var outDir = Path.GetFullPath(options.OutputDirectory);
        Directory.CreateDirectory(outDir);
        var parts = options.Parts;
        bool precond = parts.Contains(LabParts.Preconditioners);
        bool tuneVision = parts.Contains(LabParts.TableVision) || parts.Contains(LabParts.Discovery);
        bool tuneLanguage = parts.Contains(LabParts.TableLanguage) || parts.Contains(LabParts.Zoo);
        bool needVision = tuneVision || precond;
        bool needLanguage = tuneLanguage || precond;

        console.MarkupLine($"[bold]AdaGraft lab[/] — profile [cyan]{profile.Name}[/], {seeds} seed(s), schedule [cyan]{Schedule.Name(options.Schedule)}[/], device [cyan]{Markup.Escape(device.ToString())}[/], {options.Threads} thread(s)");
        console.MarkupLine($"parts: {string.Join(", ", LabParts.All.Where(parts.Contains))}; output: [link]{Markup.Escape(outDir)}[/]");

        using var vision = needVision ? LoadVision(options, profile, device) : null;
        using var language = needLanguage ? LoadLanguage(options, profile, device) : null;
        var visionNames = vision?.ParameterNames() ?? Array.Empty<string>();
        foreach (var task in new LabTask?[] { vision, language }) {
            if (task is null) continue;
            foreach (var line in LabProgress.ClauseLines($"{task.Name}: {task.Description} ({task.ParameterCount():N0} parameters)"))
                console.MarkupLine(Markup.Escape(line));
        }

        var tables = new List<TableResult>();
        var lrChoices = new Dictionary<string, Dictionary<BaseOptimizer, LrChoice>>();
        DiscoveryResult? discovery = null;
        ZooResult? zoo = null;
        var precondTables = new List<PreconditionerTable>();
        var d1 = new List<D1Row>();
        var timings = new List<(string Phase, double Seconds)>();
        string cachePath = Path.Combine(outDir, "lr-tuning.json");

        int TuneSteps(int steps) => profile.TuneFraction is double f ? Math.Max(10, (int)Math.Round(steps * f)) : 0;
        int TuneTotal(string task, int steps) => profile.TuneFraction is null ? 0 : BaseOptimizers.All.Sum(o => LearningRates.Grid(task, o).Length) * TuneSteps(steps);

        LabProgress.Run(console, Add => {
            var visionTune = Add(tuneVision, "vision: tune learning rates", TuneTotal("vision", profile.VisionSteps));
            var visionTable = Add(parts.Contains(LabParts.TableVision), "vision: 3×3 grafting table", 9.0 * seeds * profile.VisionSteps);
            var langTune = Add(tuneLanguage, "language: tune learning rates", TuneTotal("language", profile.LanguageSteps));
            var langTable = Add(parts.Contains(LabParts.TableLanguage), "language: 3×3 grafting table", 9.0 * seeds * profile.LanguageSteps);
            var zooTask = Add(parts.Contains(LabParts.Zoo), "language: section 4.1 (AdaGrad#{Adam, Yogi, AMSGrad, Adafactor})", (double)DirectionZoo.Runs(seeds) * profile.LanguageSteps);
            var discTask = Add(parts.Contains(LabParts.Discovery), "schedule discovery",
                (1.0 + seeds * (parts.Contains(LabParts.TableVision) ? 1 : 3)) * profile.VisionSteps);
            var d1Task = Add(parts.Contains(LabParts.D1), "appendix D.1 constructions", D1Constructions.TotalSteps(profile.D1));
            double PrecondSteps(string task, int steps) => (double)Preconditioners.GridPoints(task) * TuneSteps(steps) + Preconditioners.Names.Length * seeds * steps;
            var precondVision = Add(precond, "vision: preconditioners (Adam, Shampoo, SOAP, Muon; tuning and runs)", PrecondSteps("vision", profile.VisionSteps));
            var precondLang = Add(precond, "language: preconditioners (Adam, Shampoo, SOAP, Muon; tuning and runs)", PrecondSteps("language", profile.LanguageSteps));

            Action Step(ILabPhase? t) => () => t?.Tick();
            Action<string> Status(ILabPhase? t) => s => t?.Status(s);

            Dictionary<BaseOptimizer, LrChoice> Lrs(LabTask task, ILabPhase? bar, int steps)
            {
                var sw = Stopwatch.StartNew();
                bar?.Start();
                var schedule = new Schedule(options.Schedule, steps);
                var r = profile.TuneFraction is null
                    ? LearningRates.FixedChoices(task.Name)
                    : LearningRates.Tune(task, schedule, TuneSteps(steps), seed: 0, profile.ReadEvery, cachePath, options.Retune, Step(bar), Status(bar),
                        extra => bar?.Grow(extra));
                bar?.Done();
                timings.Add(($"{task.Name}: learning-rate tuning", sw.Elapsed.TotalSeconds));
                lrChoices[task.Name] = r;
                return r;
            }

            TableResult Table(LabTask task, Dictionary<BaseOptimizer, LrChoice> lrs, ILabPhase? bar, int steps)
            {
                var sw = Stopwatch.StartNew();
                bar?.Start();
                var t = GraftingTable.Run(task, lrs, new Schedule(options.Schedule, steps), seeds, profile.ReadEvery, Step(bar), Status(bar));
                bar?.Done();
                timings.Add(($"{task.Name}: 3×3 table ({9 * seeds} runs)", sw.Elapsed.TotalSeconds));
                return t;
            }

            if (vision is not null && tuneVision) {
                var lrs = Lrs(vision, visionTune, profile.VisionSteps);
                if (parts.Contains(LabParts.TableVision)) tables.Add(Table(vision, lrs, visionTable, profile.VisionSteps));
            }
            if (language is not null && tuneLanguage) {
                var lrs = Lrs(language, langTune, profile.LanguageSteps);
                if (parts.Contains(LabParts.TableLanguage)) tables.Add(Table(language, lrs, langTable, profile.LanguageSteps));
                if (parts.Contains(LabParts.Zoo)) {
                    var sw = Stopwatch.StartNew();
                    zooTask?.Start();
                    zoo = DirectionZoo.Run(language, lrs[BaseOptimizer.AdaGrad].Lr, new Schedule(options.Schedule, profile.LanguageSteps), seeds,
                        profile.ReadEvery, Step(zooTask), Status(zooTask));
                    zooTask?.Done();
                    timings.Add(($"language: section 4.1 ({DirectionZoo.Runs(seeds)} runs)", sw.Elapsed.TotalSeconds));
                }
            }
            if (vision is not null && parts.Contains(LabParts.Discovery)) {
                var sw = Stopwatch.StartNew();
                discTask?.Start();
                var visionTableResult = tables.FirstOrDefault(t => t.Task == vision.Name);
                RunResult? Reuse(BaseOptimizer o, int seed) => visionTableResult?.Cell(o, o).Runs.FirstOrDefault(r => r.Seed == seed);
                discovery = ScheduleDiscovery.Run(vision, lrChoices[vision.Name], new Schedule(options.Schedule, profile.VisionSteps), seeds,
                    profile.ReadEvery, Reuse, Step(discTask), Status(discTask));
                discTask?.Done();
                timings.Add(("schedule discovery", sw.Elapsed.TotalSeconds));
            }
            if (precond) {
                foreach (var (task, bar, steps) in new[] { ((LabTask)vision!, precondVision, profile.VisionSteps), (language!, precondLang, profile.LanguageSteps) }) {
                    var sw = Stopwatch.StartNew();
                    bar?.Start();
                    precondTables.Add(Preconditioners.Run(task, new Schedule(options.Schedule, steps), seeds, TuneSteps(steps), profile.ReadEvery, cachePath,
                        options.Retune, Step(bar), Status(bar), extra => bar?.Grow(extra)));
                    bar?.Done();
                    timings.Add(($"{task.Name}: preconditioners ({Preconditioners.Names.Length * seeds} runs and tuning)", sw.Elapsed.TotalSeconds));
                }
            }
            if (parts.Contains(LabParts.D1)) {
                var sw = Stopwatch.StartNew();
                d1Task?.Start();
                d1.AddRange(D1Constructions.Run(profile.D1, device, Step(d1Task)));
                d1Task?.Done();
                timings.Add(("appendix D.1", sw.Elapsed.TotalSeconds));
            }
        });

        // Terminal tables.
        foreach (var t in tables) {
            console.Write(Reports.TableConsole(t));
            console.MarkupLine(Markup.Escape(Reports.TableConsoleCaption(t)));
        }
        if (discovery is not null) {
            console.MarkupLine(Markup.Escape($"discovery: correction c(t) = c0 + c1·t (t from 1) with c0 = {discovery.Fit.A:G4}, c1 = {discovery.Fit.B:G4}, R² = {discovery.Fit.RSquared:F3}"));
            console.MarkupLine(Markup.Escape($"discovery: final training loss SGD {discovery.SgdLoss.Format("F4")}, AdaGrad {discovery.AdaGradLoss.Format("F4")}, corrected AdaGrad {discovery.CorrectedLoss.Format("F4")} ({(discovery.Helped ? "lower on average" : "not lower on average")})"));
        }
        var preconditioners = precondTables.Count > 0 ? new PreconditionersResult(precondTables) : null;
        if (preconditioners is not null)
            foreach (var t in preconditioners.Tables)
                foreach (var line in Preconditioners.TextLines(t)) console.MarkupLine(Markup.Escape(line));
        if (d1.Count > 0) {
            var dt = new Table().Border(TableBorder.Rounded).Title("[bold]Appendix D.1[/]: test error");
            dt.AddColumn("construction");
            dt.AddColumn("optimizer");
            dt.AddColumn(new TableColumn("test error").RightAligned());
            dt.AddColumn("is");
            foreach (var r in d1) dt.AddRow(Markup.Escape(r.Construction), Markup.Escape(r.Optimizer), r.TestError.ToString("F3"), Markup.Escape(r.TestErrorMeaning));
            console.Write(dt);
        }

        // Files.
        var written = new List<string>();
        void Write(string name, string content)
        {
            File.WriteAllText(Path.Combine(outDir, name), content);
            written.Add(name);
        }
        if (tables.Count > 0) {
            Write("grafting-table.csv", Reports.TableCsv(tables));
            Write("grafting-runs.csv", Reports.RunsCsv(tables));
            Write("grafting-curves.csv", Reports.CurvesCsv(tables));
            Write("grafting-table.md", "# Grafting table\n\n" + string.Concat(tables.Select(Reports.TableMarkdown)) + Reports.LearningRatesMarkdown(tables, profile.TuneFraction));
            Plots.GraftingCurves(Path.Combine(outDir, "grafting-curves.png"), tables);
            written.Add("grafting-curves.png");
        }
        if (discovery is not null) {
            Write("discovery-ratio.csv", Reports.DiscoveryCsv(discovery));
            AdaGraft.Diagnostics.StepNormCsv.Write(Path.Combine(outDir, "discovery-norms.csv"), discovery.Norms);
            written.Add("discovery-norms.csv");
            AdaGraft.Plotting.RatioPlots.PerTensorRatios(Plots.WithTensorNames(discovery.Norms, visionNames), Path.Combine(outDir, "discovery-tensor-ratios.png"),
                title: $"{discovery.Task}: per-tensor ratios ‖ΔM‖/‖ΔD‖ of global SGD#AdaGrad, every step");
            written.Add("discovery-tensor-ratios.png");
            Plots.DiscoveryRatio(Path.Combine(outDir, "discovery-ratio.png"), discovery);
            Plots.DiscoveryCurves(Path.Combine(outDir, "discovery-curves.png"), discovery);
            written.Add("discovery-ratio.png");
            written.Add("discovery-curves.png");
        }
        if (d1.Count > 0) Write("d1.csv", Reports.D1Csv(d1));
        if (zoo is not null) {
            Write("section41.csv", DirectionZoo.Csv(zoo));
            Plots.ZooCurves(Path.Combine(outDir, "section41-curves.png"), zoo);
            written.Add("section41-curves.png");
        }

        if (preconditioners is not null) {
            Write("preconditioners.csv", Preconditioners.Csv(preconditioners));
            Write("preconditioners-curves.csv", Preconditioners.CurvesCsv(preconditioners));
            Write("preconditioners.md", "# Preconditioners\n\n" + Preconditioners.Markdown(preconditioners, profile.TuneFraction));
            Plots.PreconditionerCurves(Path.Combine(outDir, "preconditioners-curves.png"), preconditioners);
            written.Add("preconditioners-curves.png");
        }

        var report = new StringBuilder("# AdaGraft lab report\n\n");
        report.Append($"Profile `{profile.Name}`, {seeds} seed(s), schedule `{Schedule.Name(options.Schedule)}`, device `{device}`, {options.Threads} CPU thread(s), {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC.\n\n");
        report.Append(Reading.Markdown(tables, discovery, d1, zoo, seeds, profile.Name, preconditioners));
        if (tables.Count > 0) {
            report.Append("## Grafting tables\n\n").Append(string.Concat(tables.Select(Reports.TableMarkdown)));
            report.Append("Curves: `grafting-curves.png` (colour = M, line style = D; seed 0).\n\n");
        }
        if (tables.Count > 0 || discovery is not null)
            report.Append(Reports.LearningRatesMarkdown(tables.Count > 0 ? tables : Array.Empty<TableResult>(), profile.TuneFraction));
        if (discovery is not null) report.Append(Reports.DiscoveryMarkdown(discovery, vision!.HeldOutName, vision.HeldOutHigherIsBetter)).Append("Figures: `discovery-ratio.png`, `discovery-curves.png`, `discovery-tensor-ratios.png` (per-tensor ratios, figure 7). Every recorded norm: `discovery-norms.csv` (fit any series with `dotnet run --project samples/AdaGraft.Lab -c Release -- fit lab-output/discovery-norms.csv`).\n\n");
        if (d1.Count > 0) report.Append(Reports.D1Markdown(d1));
        if (zoo is not null) report.Append(DirectionZoo.Markdown(zoo, language!.HeldOutName, language.HeldOutHigherIsBetter));
        if (preconditioners is not null) report.Append(Preconditioners.Markdown(preconditioners, profile.TuneFraction));
        report.Append("## Wall time\n\n| phase | seconds |\n|---|---:|\n");
        foreach (var (phase, s) in timings) report.Append($"| {phase} | {s:F1} |\n");
        report.Append($"| **total** | **{total.Elapsed.TotalSeconds:F1}** |\n");
        Write("report.md", report.ToString());

        console.MarkupLine($"wrote {written.Count} files to [link]{Markup.Escape(outDir)}[/]:");
        // Six names a line, so that no line grows past what a log shows unwrapped.
        foreach (bool png in new[] { false, true })
            foreach (var names in written.Where(w => w.EndsWith(".png", StringComparison.Ordinal) == png).Chunk(6))
                console.MarkupLine(Markup.Escape("  " + string.Join(", ", names)));
        console.MarkupLine($"total wall time {total.Elapsed.TotalSeconds:F1} s");
        return new LabSummary(outDir, tables, discovery, d1, total.Elapsed.TotalSeconds) { Zoo = zoo, Preconditioners = preconditioners };
    }

    private static Device ResolveDevice(string name)
    {
        switch (name?.Trim().ToLowerInvariant()) {
            case "cpu":
                return torch.CPU;
            case "cuda":
                if (!torch.cuda.is_available())
                    throw new InvalidOperationException("--device cuda: CUDA is not available. This build references the CPU libtorch (libtorch-cpu-linux-x64); on a GPU machine reference a CUDA libtorch package instead.");
                return torch.CUDA;
            default:
                throw new ArgumentException($"Unknown device '{name}'; use cpu or cuda.");
        }
    }

    private static VisionTask LoadVision(LabOptions o, LabProfile p, Device device)
    {
        var dir = o.DataDirectory ?? FashionMnist.ShippedDirectory;
        var (train, test) = FashionMnist.Load(dir);
        string source = o.DataDirectory is null ? "shipped subset" : dir;
        return new VisionTask(train, test, p.Vision, device, source);
    }

    private static LanguageTask LoadLanguage(LabOptions o, LabProfile p, Device device)
    {
        var corpus = o.TextFile is null
            ? TokenCorpus.Generated(seed: 7, p.TrainTokens, p.HeldOutTokens, p.Grammar)
            : TokenCorpus.FromTextFile(o.TextFile, p.MaxTextCharacters);
        return new LanguageTask(corpus, p.Language, device);
    }
}
