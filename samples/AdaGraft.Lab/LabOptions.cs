using System;
using System.Collections.Generic;
using System.Linq;
using AdaGraft.Lab.Data;
using AdaGraft.Lab.Tasks;
using AdaGraft.Lab.Training;

namespace AdaGraft.Lab;

/// <summary>The lab's parts, selectable with <c>--tasks</c>.</summary>
public static class LabParts
{
    /// <summary>The N×N grafting table on Fashion-MNIST.</summary>
    public const string TableVision = "table-vision";

    /// <summary>The N×N grafting table on the language task.</summary>
    public const string TableLanguage = "table-language";

    /// <summary>Schedule discovery by global grafting SGD#AdaGrad (section 3.4).</summary>
    public const string Discovery = "discovery";

    /// <summary>Appendix D.1's two constructions.</summary>
    public const string D1 = "d1";

    /// <summary>Section 4.1: AdaGrad's step norms with Adam, Yogi, AMSGrad and Adafactor directions (language task).</summary>
    public const string Zoo = "zoo";

    /// <summary>Shampoo, SOAP and Muon (with and without grafting) against Adam on both tasks (issue 14). Opt-in: not
    /// in a default or <c>--full</c> <c>all</c> (it would take the default run past 8 minutes on 2 cores), in a
    /// <c>--quick</c> one.</summary>
    public const string Preconditioners = "preconditioners";

    /// <summary>Every part, in run order.</summary>
    public static readonly string[] All = { TableVision, TableLanguage, Discovery, D1, Zoo, Preconditioners };

    /// <summary>What "all" means without <c>--quick</c>: every part except the opt-in <see cref="Preconditioners"/>.</summary>
    public static readonly string[] Default = All.Where(p => p != Preconditioners).ToArray();

    /// <summary>Parses a comma list; "all" is <see cref="Default"/>, or every part with <paramref name="quick"/>.</summary>
    public static IReadOnlySet<string> Parse(string text, bool quick = false)
    {
        var parts = (text ?? "all").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(p => p.ToLowerInvariant()).ToList();
        if (parts.Count == 0 || parts.Contains("all")) return new HashSet<string>(quick ? All : Default);
        var unknown = parts.Where(p => !All.Contains(p)).ToList();
        if (unknown.Count > 0)
            throw new ArgumentException($"Unknown task(s) {string.Join(", ", unknown)}; use a comma list of {string.Join(", ", All)} (or all).");
        return new HashSet<string>(parts);
    }
}

/// <summary>What the command line asked for.</summary>
public sealed record LabOptions
{
    /// <summary>Seconds-long run with fixed learning rates (for tests).</summary>
    public bool Quick { get; init; }

    /// <summary>Longer runs, more seeds.</summary>
    public bool Full { get; init; }

    /// <summary>Seeds per cell (null: the profile's default).</summary>
    public int? Seeds { get; init; }

    /// <summary>Fashion-MNIST folder (null: the subset shipped with the lab).</summary>
    public string? DataDirectory { get; init; }

    /// <summary>Plain-text file for the language task at character level (null: the generated corpus).</summary>
    public string? TextFile { get; init; }

    /// <summary>"cpu" or "cuda".</summary>
    public string Device { get; init; } = "cpu";

    /// <summary>Output folder.</summary>
    public string OutputDirectory { get; init; } = "lab-output";

    /// <summary>Parts to run.</summary>
    public IReadOnlySet<string> Parts { get; init; } = new HashSet<string>(LabParts.Default);

    /// <summary>The shared schedule's shape.</summary>
    public ScheduleKind Schedule { get; init; } = ScheduleKind.WarmupStaircase;

    /// <summary>CPU threads for libtorch.</summary>
    public int Threads { get; init; } = 1;

    /// <summary>Retune learning rates even when the output folder holds cached values.</summary>
    public bool Retune { get; init; }
}

/// <summary>Settings of appendix D.1's constructions.</summary>
/// <param name="TrainPoints">Training points of the least-squares instance (n).</param>
/// <param name="TestPoints">Fresh test points of the least-squares instance.</param>
/// <param name="PositiveProbability">p: P(y = +1).</param>
/// <param name="LeastSquaresSteps">Full-batch steps per optimizer.</param>
/// <param name="HingeDimension">d of the sparse hinge instance.</param>
/// <param name="HingeFraction">c: the instance has c·d samples (one pass, one sample per step).</param>
public sealed record D1Settings(
    int TrainPoints = 40,
    int TestPoints = 500,
    double PositiveProbability = 0.7,
    int LeastSquaresSteps = 3000,
    int HingeDimension = 1000,
    double HingeFraction = 0.5);

/// <summary>How big every part of the lab is: quick (tests), default (≈ 10 minutes on 2 cores) or full.</summary>
public sealed record LabProfile
{
    /// <summary>"quick", "default" or "full".</summary>
    public required string Name { get; init; }

    /// <summary>Vision model and batch.</summary>
    public required VisionSettings Vision { get; init; }

    /// <summary>Steps of a vision run.</summary>
    public required int VisionSteps { get; init; }

    /// <summary>Language model and batch.</summary>
    public required LanguageSettings Language { get; init; }

    /// <summary>Steps of a language run.</summary>
    public required int LanguageSteps { get; init; }

    /// <summary>Generated corpus: training tokens.</summary>
    public required int TrainTokens { get; init; }

    /// <summary>Generated corpus: held-out tokens.</summary>
    public required int HeldOutTokens { get; init; }

    /// <summary>Generated corpus: grammar settings.</summary>
    public required GrammarOptions Grammar { get; init; }

    /// <summary>Character cap for --text files.</summary>
    public required int MaxTextCharacters { get; init; }

    /// <summary>Learning-rate tuning runs are this fraction of a full run (null: no tuning, fixed learning rates).</summary>
    public double? TuneFraction { get; init; }

    /// <summary>Default seeds per cell.</summary>
    public required int Seeds { get; init; }

    /// <summary>Steps between host reads of recorded values.</summary>
    public required int ReadEvery { get; init; }

    /// <summary>Appendix D.1 sizes.</summary>
    public required D1Settings D1 { get; init; }

    /// <summary>The profile for the options.</summary>
    public static LabProfile For(LabOptions o)
    {
        ArgumentNullException.ThrowIfNull(o);
        if (o.Quick && o.Full) throw new ArgumentException("--quick and --full exclude each other.");
        if (o.Quick) return Quick;
        return o.Full ? FullProfile : Default;
    }

    /// <summary>Seconds: tiny models, few steps, fixed learning rates.</summary>
    public static readonly LabProfile Quick = new() {
        Name = "quick",
        Vision = new VisionSettings(Hidden: 32, BatchSize: 32, MaxTrain: 512, MaxTest: 256),
        VisionSteps = 24,
        Language = new LanguageSettings(Embedding: 8, Hidden: 16, SequenceLength: 12, BatchSize: 8, EvalWindows: 32),
        LanguageSteps = 24,
        TrainTokens = 4000,
        HeldOutTokens = 1000,
        Grammar = new GrammarOptions(VocabularySize: 120, Categories: 8, NonTerminals: 5),
        MaxTextCharacters = 20_000,
        TuneFraction = null,
        Seeds = 1,
        ReadEvery = 8,
        D1 = new D1Settings(TrainPoints: 20, TestPoints: 100, LeastSquaresSteps: 400, HingeDimension: 200),
    };

    /// <summary>The default run: about 10 minutes on 2 CPU cores.</summary>
    public static readonly LabProfile Default = new() {
        Name = "default",
        Vision = new VisionSettings(Hidden: 128, BatchSize: 128),
        VisionSteps = 1000,
        Language = new LanguageSettings(),
        LanguageSteps = 600,
        TrainTokens = 100_000,
        HeldOutTokens = 10_000,
        Grammar = new GrammarOptions(),
        MaxTextCharacters = 2_000_000,
        TuneFraction = 0.25,
        Seeds = 2,
        ReadEvery = 50,
        D1 = new D1Settings(),
    };

    /// <summary>Longer runs and three seeds (an hour or more on 2 cores).</summary>
    public static readonly LabProfile FullProfile = new() {
        Name = "full",
        Vision = new VisionSettings(Hidden: 256, BatchSize: 128),
        VisionSteps = 3000,
        Language = new LanguageSettings(Embedding: 64, Hidden: 128),
        LanguageSteps = 3000,
        TrainTokens = 400_000,
        HeldOutTokens = 40_000,
        Grammar = new GrammarOptions(VocabularySize: 2000, Categories: 20, NonTerminals: 9),
        MaxTextCharacters = 10_000_000,
        TuneFraction = 0.25,
        Seeds = 3,
        ReadEvery = 100,
        D1 = new D1Settings(TrainPoints: 100, TestPoints: 2000, LeastSquaresSteps: 8000, HingeDimension: 5000),
    };
}
