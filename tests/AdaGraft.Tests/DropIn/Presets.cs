using System.Reflection;

namespace AdaGraft.Tests.DropIn;

/// <summary>
/// The presets, found by reflection so that a preset added later is tested without editing the tests: every public
/// static method of a public <c>AdaGraft.Optimizers</c> type that takes parameters first and returns an optimizer; and
/// the table of TorchSharp-compatible presets with the <c>torch.optim</c> factory each replaces.
/// </summary>
public static class Presets
{
    /// <summary>
    /// Each TorchSharp-compatible preset (host type, method name) and the <c>torch.optim</c> factory it replaces: the
    /// entries of <see cref="OptimizerTable"/> with <see cref="OptimizerInfo.DropInFor"/>. A drop-in added later is one
    /// more table entry with it set; every test over this list then checks it.
    /// </summary>
    public static readonly (Type Host, string Preset, string TorchFactory)[] TorchTable =
        OptimizerTable.All.Where(e => e.DropInFor is not null).Select(e => (e.Type, e.Preset!, e.DropInFor!)).ToArray();

    /// <summary>The rows of <see cref="TorchTable"/> by preset name.</summary>
    public static TheoryData<string> TorchNames {
        get {
            var data = new TheoryData<string>();
            foreach (var row in TorchTable) data.Add(row.Preset);
            return data;
        }
    }

    public static (Type Host, string Preset, string TorchFactory) TorchRow(string preset) => TorchTable.Single(r => r.Preset == preset);

    /// <summary>Every preset over a parameter list: "Host.Method" → method.</summary>
    public static IReadOnlyDictionary<string, MethodInfo> All { get; } = FindAll();

    public static TheoryData<string> AllNames {
        get {
            var data = new TheoryData<string>();
            foreach (var name in All.Keys) data.Add(name);
            return data;
        }
    }

    /// <summary>
    /// The presets that have a parameter-group form of the same name; <c>MuonOptimizer.CreateWithAdamW</c> has none: it
    /// builds groups itself (its group form is <c>MuonOptimizer.Create</c> over <c>MuonOptimizer.SplitByRank</c>'s groups).
    /// </summary>
    public static TheoryData<string> GroupFormNames {
        get {
            var data = new TheoryData<string>();
            foreach (var name in All.Keys.Where(n => n != "MuonOptimizer.CreateWithAdamW")) data.Add(name);
            return data;
        }
    }

    /// <summary>Parameter shapes a preset takes: <see cref="Fixtures.Shapes"/>, or matrices only where its groups take nothing else (Muon).</summary>
    public static long[][] ShapesFor(string preset) => preset.StartsWith("MuonOptimizer.", StringComparison.Ordinal)
        ? new[] { new long[] { 4, 3 }, new long[] { 3, 5 }, new long[] { 2, 3, 4 }, new long[] { 5, 2 } }
        : Fixtures.Shapes;

    private static Dictionary<string, MethodInfo> FindAll()
    {
        var found = new Dictionary<string, MethodInfo>(StringComparer.Ordinal);
        var types = typeof(GenericSecondMomentOptimizer).Assembly.GetExportedTypes()
            .Where(t => t.Namespace == "AdaGraft.Optimizers" && t.IsClass);
        foreach (var type in types) {
            foreach (var m in type.GetMethods(BindingFlags.Public | BindingFlags.Static | BindingFlags.DeclaredOnly)) {
                var ps = m.GetParameters();
                if (ps.Length == 0 || ps[0].ParameterType != typeof(IEnumerable<Parameter>)) continue;
                if (!typeof(OptimizerHelper).IsAssignableFrom(m.ReturnType)) continue;
                found.Add($"{type.Name}.{m.Name}", m);
            }
        }
        return found;
    }

    /// <summary>The overload of <paramref name="host"/>.<paramref name="name"/> whose first parameter has type <paramref name="first"/> (null: none).</summary>
    public static MethodInfo? Overload(Type host, string name, Type first) =>
        host.GetMethods(BindingFlags.Public | BindingFlags.Static)
            .SingleOrDefault(m => m.Name == name && m.GetParameters() is { Length: > 0 } ps && ps[0].ParameterType == first);

    /// <summary>TorchSharp's factory <paramref name="name"/> over a parameter list.</summary>
    public static MethodInfo TorchFactory(string name, Type? first = null) =>
        typeof(optim).GetMethods(BindingFlags.Public | BindingFlags.Static)
            .Single(m => m.Name == name && m.GetParameters()[0].ParameterType == (first ?? typeof(IEnumerable<Parameter>)));

    /// <summary>A learning rate for presets whose learning rate has no default (SGD-style).</summary>
    public const double BaseLearningRate = 0.05;

    /// <summary>
    /// Calls <paramref name="method"/> with <paramref name="first"/>, the given arguments by name, and every other
    /// argument at its default (<see cref="BaseLearningRate"/> for a learning rate without one); unwraps the exception.
    /// </summary>
    public static object Invoke(MethodInfo method, object first, IReadOnlyDictionary<string, object?>? arguments = null)
    {
        var ps = method.GetParameters();
        var args = new object?[ps.Length];
        args[0] = first;
        for (int i = 1; i < ps.Length; i++) {
            if (arguments is not null && arguments.TryGetValue(ps[i].Name!, out var v)) args[i] = v;
            else if (ps[i].HasDefaultValue) args[i] = ps[i].DefaultValue;
            else if (ps[i].ParameterType == typeof(double)) args[i] = BaseLearningRate;
            else throw new InvalidOperationException($"{method.Name}'s argument {ps[i].Name} has no default and no test value.");
        }
        try {
            return method.Invoke(null, args)!;
        } catch (TargetInvocationException e) when (e.InnerException is not null) {
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(e.InnerException).Throw();
            throw;
        }
    }

    /// <summary>The default learning rate of <paramref name="method"/> (<see cref="BaseLearningRate"/> where it has none).</summary>
    public static double DefaultLearningRate(MethodInfo method)
    {
        var p = method.GetParameters().Single(p => p.Name == LearningRateName(method));
        return p.HasDefaultValue ? (double)p.DefaultValue! : BaseLearningRate;
    }

    /// <summary>The name and position of the learning-rate argument (<c>lr</c> or TorchSharp SGD's <c>learningRate</c>).</summary>
    public static string LearningRateName(MethodInfo method) =>
        method.GetParameters().Skip(1).Select(p => p.Name!).First(n => n is "lr" or "learningRate");
}
