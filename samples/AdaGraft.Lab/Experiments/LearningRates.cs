using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text.Json;
using AdaGraft.Lab.Tasks;
using AdaGraft.Lab.Training;

namespace AdaGraft.Lab.Experiments;

/// <summary>One grid point of the learning-rate search.</summary>
public sealed record GridPoint(double Lr, double TrainLoss, bool Diverged);

/// <summary>The learning rate chosen for one base optimizer on one task, and how.</summary>
public sealed record LrChoice(string Task, string Optimizer, double Lr, string How, IReadOnlyList<GridPoint> Grid);

/// <summary>An optimizer whose global learning rate is tuned on a grid: its name (the cache key's), the grid, and a
/// factory over a model's parameters at a learning rate.</summary>
public sealed record TuneCandidate(string Name, double[] Grid, Func<IReadOnlyList<TorchSharp.Modules.Parameter>, double, TorchSharp.torch.optim.Optimizer> Make);

/// <summary>
/// The global learning rate of each base optimizer, tuned once per task by a coarse grid (short runs with the same
/// schedule shape, lowest final training loss wins) and then reused untouched wherever that optimizer is M.
/// When the winner is at an edge of the grid, the grid is extended past it (at most twice). Results are cached in
/// the output folder (<c>lr-tuning.json</c>) under a key that names every setting they
/// depend on; <c>--quick</c> uses the fixed values of <see cref="Fixed"/>.
/// </summary>
public static class LearningRates
{
    /// <summary>The grid of each optimizer on each task: four values ≈ ×3 apart, placed so that the short-run winner
    /// was not at an edge in a first trial (the language task favours larger learning rates); any other task (a
    /// --text file) uses the language grids.</summary>
    public static double[] Grid(string task, BaseOptimizer o) => (task, o) switch {
        ("vision", BaseOptimizer.Sgd) => new[] { 0.01, 0.03, 0.1, 0.3 },
        ("vision", BaseOptimizer.Adam) => new[] { 1e-3, 3e-3, 1e-2, 3e-2 },
        ("vision", BaseOptimizer.AdaGrad) => new[] { 1e-3, 3e-3, 1e-2, 3e-2 },
        (_, BaseOptimizer.Sgd) => new[] { 0.3, 1.0, 3.0, 10.0 },
        (_, BaseOptimizer.Adam) => new[] { 1e-3, 3e-3, 1e-2, 3e-2 },
        (_, BaseOptimizer.AdaGrad) => new[] { 3e-3, 1e-2, 3e-2, 0.1 },
        _ => throw new ArgumentOutOfRangeException(nameof(o), o, "Unknown base optimizer."),
    };

    /// <summary>The fixed learning rates of <c>--quick</c> (no tuning): the values the default run's grid chose on this
    /// machine when the grids were set (vision: SGD 0.1, Adam 0.01, AdaGrad 0.01; language: SGD 3, Adam 0.01, AdaGrad 0.03).</summary>
    public static double Fixed(string task, BaseOptimizer o) => (task, o) switch {
        ("vision", BaseOptimizer.Sgd) => 0.1,
        ("vision", BaseOptimizer.Adam) => 0.01,
        ("vision", BaseOptimizer.AdaGrad) => 0.01,
        (_, BaseOptimizer.Sgd) => 3.0,
        (_, BaseOptimizer.Adam) => 0.01,
        (_, BaseOptimizer.AdaGrad) => 0.03,
        _ => throw new ArgumentOutOfRangeException(nameof(o), o, "Unknown base optimizer."),
    };

    private sealed record CacheEntry(string Key, double Lr, List<GridPoint> Grid);

    /// <summary>Times a grid may be extended past an edge whose value won.</summary>
    public const int MaxExtensions = 2;

    /// <summary>
    /// Tunes (or loads from <paramref name="cachePath"/>) the learning rate of every base optimizer on
    /// <paramref name="task"/>. <paramref name="progress"/> is called once per training step;
    /// <paramref name="grow"/> is told of the extra steps when a grid is extended.
    /// </summary>
    public static Dictionary<BaseOptimizer, LrChoice> Tune(LabTask task, Schedule fullSchedule, int tuneSteps, int seed, int readEvery,
        string cachePath, bool retune, Action? progress, Action<string>? status, Action<int>? grow = null)
    {
        ArgumentNullException.ThrowIfNull(task);
        var candidates = BaseOptimizers.All.Select(o => new TuneCandidate(BaseOptimizers.Name(o), Grid(task.Name, o),
            (ps, lr) => BaseOptimizers.Create(o, ps, lr))).ToList();
        var choices = TuneAll(task, candidates, fullSchedule, tuneSteps, seed, readEvery, cachePath, retune, progress, status, grow);
        return BaseOptimizers.All.ToDictionary(o => o, o => choices[BaseOptimizers.Name(o)]);
    }

    /// <summary>
    /// Tunes (or loads from <paramref name="cachePath"/>) the learning rate of each of <paramref name="candidates"/> in
    /// order, by name, as <see cref="Tune"/> does for the base optimizers (the same cache key, so a candidate of the same
    /// name and grid reuses a base optimizer's choice). Candidates are tuned one after another, so a later one may
    /// read an earlier one's choice through <paramref name="candidates"/>' factories (see
    /// <see cref="TuneCandidate"/>); <paramref name="chosen"/> is told of each choice as it is made.
    /// </summary>
    public static Dictionary<string, LrChoice> TuneAll(LabTask task, IEnumerable<TuneCandidate> candidates, Schedule fullSchedule, int tuneSteps,
        int seed, int readEvery, string cachePath, bool retune, Action? progress, Action<string>? status, Action<int>? grow = null,
        Action<LrChoice>? chosen = null)
    {
        ArgumentNullException.ThrowIfNull(task);
        ArgumentNullException.ThrowIfNull(candidates);
        ArgumentNullException.ThrowIfNull(fullSchedule);
        var cache = LoadCache(cachePath);
        var result = new Dictionary<string, LrChoice>();
        var schedule = new Schedule(fullSchedule.Kind, tuneSteps);
        foreach (var candidate in candidates) {
            var c = TuneOne(task, candidate, schedule, seed, readEvery, cache, retune, progress, status, grow);
            result[candidate.Name] = c;
            chosen?.Invoke(c);
        }
        SaveCache(cachePath, cache);
        return result;
    }

    private static LrChoice TuneOne(LabTask task, TuneCandidate candidate, Schedule schedule, int seed, int readEvery,
        Dictionary<string, CacheEntry> cache, bool retune, Action? progress, Action<string>? status, Action<int>? grow)
    {
        int tuneSteps = schedule.TotalSteps;
        var (name, grid, make) = candidate;
        string key = $"{task.Name}|{name}|{task.Description}|steps={tuneSteps}|schedule={Schedule.Name(schedule.Kind)}|seed={seed}|grid={string.Join(",", grid)}";
        if (!retune && cache.TryGetValue(key, out var hit)) {
            if (hit.Grid.Count > grid.Length) grow?.Invoke((hit.Grid.Count - grid.Length) * tuneSteps);
            for (int i = 0; i < hit.Grid.Count * tuneSteps; i++) progress?.Invoke();
            return new LrChoice(task.Name, name, hit.Lr, "cached", hit.Grid);
        }
        var points = new List<GridPoint>();
        void Try(double lr)
        {
            status?.Invoke($"{task.Name}: tuning {name} lr={lr:G3}");
            var run = Trainer.Run(task, new RunSpec(name, ps => make(ps, lr), schedule), seed, tuneSteps, readEvery, progress);
            points.Add(new GridPoint(lr, run.Diverged ? double.PositiveInfinity : run.Final.TrainLoss, run.Diverged));
        }
        GridPoint Best() => points.Where(p => !p.Diverged && double.IsFinite(p.TrainLoss)).OrderBy(p => p.TrainLoss).FirstOrDefault()
            ?? points.OrderBy(p => p.Lr).First();
        foreach (var lr in grid) Try(lr);
        // A winner at an edge of the grid does not bracket the optimum: extend the grid past that edge by the
        // grid's own ratio, at most MaxExtensions times.
        int extended = 0;
        while (extended < MaxExtensions) {
            var sorted = points.OrderBy(p => p.Lr).ToList();
            var best = Best();
            double next;
            if (best.Lr == sorted[^1].Lr && !best.Diverged) next = sorted[^1].Lr * (sorted[^1].Lr / sorted[^2].Lr);
            else if (best.Lr == sorted[0].Lr && !best.Diverged) next = sorted[0].Lr / (sorted[1].Lr / sorted[0].Lr);
            else break;
            grow?.Invoke(tuneSteps);
            Try(next);
            extended++;
        }
        var choice = Best();
        points = points.OrderBy(p => p.Lr).ToList();
        cache[key] = new CacheEntry(key, choice.Lr, points);
        return new LrChoice(task.Name, name, choice.Lr, extended > 0 ? $"grid, extended ×{extended}" : "grid", points);
    }

    /// <summary>The fixed values, as choices.</summary>
    public static Dictionary<BaseOptimizer, LrChoice> FixedChoices(string task) =>
        BaseOptimizers.All.ToDictionary(o => o, o => new LrChoice(task, BaseOptimizers.Name(o), Fixed(task, o), "fixed (--quick)", Array.Empty<GridPoint>()));

    private static readonly JsonSerializerOptions Json = new() {
        WriteIndented = true,
        NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals,
    };

    private static Dictionary<string, CacheEntry> LoadCache(string path)
    {
        try {
            if (!File.Exists(path)) return new();
            var list = JsonSerializer.Deserialize<List<CacheEntry>>(File.ReadAllText(path), Json);
            return list?.ToDictionary(e => e.Key) ?? new();
        } catch (JsonException) {
            return new(); // a damaged cache is retuned, not fatal
        }
    }

    private static void SaveCache(string path, Dictionary<string, CacheEntry> cache)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        File.WriteAllText(path, JsonSerializer.Serialize(cache.Values.OrderBy(e => e.Key, StringComparer.Ordinal).ToList(), Json));
    }
}
