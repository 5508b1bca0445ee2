using System.Reflection;

namespace AdaGraft.Tests.DropIn;

/// <summary>
/// Every TorchSharp-compatible preset has, for each overload of the <c>torch.optim</c> factory it replaces (parameters,
/// named parameters, TorchSharp's parameter groups), an overload with the same parameter types, names, positional
/// order and defaults — read from TorchSharp's assembly by reflection, so a drift on either side fails here.
/// </summary>
public sealed class TorchSignatureTests
{
    /// <summary>How <paramref name="ours"/>'s signature differs from <paramref name="theirs"/> (empty: the same).</summary>
    internal static List<string> Differences(MethodInfo theirs, MethodInfo ours)
    {
        var t = theirs.GetParameters();
        var o = ours.GetParameters();
        var differences = new List<string>();
        if (t.Length != o.Length)
            differences.Add($"{o.Length} parameters where TorchSharp has {t.Length} ({Describe(o)} vs {Describe(t)})");
        for (int i = 0; i < Math.Min(t.Length, o.Length); i++) {
            if (o[i].Name != t[i].Name) differences.Add($"argument {i} is '{o[i].Name}' where TorchSharp's is '{t[i].Name}'");
            if (o[i].ParameterType != t[i].ParameterType) differences.Add($"argument {i} ({t[i].Name}) has type {o[i].ParameterType.Name} where TorchSharp's is {t[i].ParameterType.Name}");
            if (o[i].HasDefaultValue != t[i].HasDefaultValue)
                differences.Add($"argument {i} ({t[i].Name}) {(o[i].HasDefaultValue ? "has" : "lacks")} a default where TorchSharp's {(t[i].HasDefaultValue ? "has one" : "has none")}");
            else if (t[i].HasDefaultValue && !Equals(o[i].DefaultValue, t[i].DefaultValue))
                differences.Add($"argument {i} ({t[i].Name}) defaults to {o[i].DefaultValue} where TorchSharp's defaults to {t[i].DefaultValue}");
        }
        return differences;
    }

    private static string Describe(ParameterInfo[] ps) => "(" + string.Join(", ", ps.Select(p => $"{p.ParameterType.Name} {p.Name}")) + ")";

    /// <summary>For every overload of TorchSharp's factory: ours with the same first-parameter type, and how it differs.</summary>
    internal static List<string> Drift(Type host, string preset, string torchFactory)
    {
        var theirs = typeof(optim).GetMethods(BindingFlags.Public | BindingFlags.Static).Where(m => m.Name == torchFactory).ToList();
        var drift = new List<string>();
        if (theirs.Count == 0) drift.Add($"TorchSharp has no torch.optim.{torchFactory}");
        foreach (var t in theirs) {
            var first = t.GetParameters()[0].ParameterType;
            var ours = Presets.Overload(host, preset, first);
            if (ours is null) {
                drift.Add($"{preset} has no overload taking {first} (TorchSharp's {torchFactory} does)");
                continue;
            }
            drift.AddRange(Differences(t, ours).Select(d => $"{preset}({first.GenericTypeArguments.FirstOrDefault()?.Name}): {d}"));
        }
        return drift;
    }

    [Theory]
    [MemberData(nameof(Presets.TorchNames), MemberType = typeof(Presets))]
    public void APresetHasTorchSharpsNamesOrderAndDefaultsInEveryForm(string preset)
    {
        var (host, name, factory) = Presets.TorchRow(preset);
        var overloads = typeof(optim).GetMethods(BindingFlags.Public | BindingFlags.Static).Count(m => m.Name == factory);
        overloads.Should().BeGreaterThanOrEqualTo(3, $"TorchSharp 0.107's {factory} has parameter, named-parameter and group forms");
        Drift(host, name, factory).Should().BeEmpty($"{preset} must be a drop-in for torch.optim.{factory}");
    }

    /// <summary>TorchSharp's other second-moment built-ins and their rule optimizers (parameter-list form).</summary>
    public static TheoryData<Type, string> RuleDropIns() => new() {
        { typeof(NAdamOptimizer), nameof(optim.NAdam) },
        { typeof(RAdamOptimizer), nameof(optim.RAdam) },
        { typeof(AdamaxOptimizer), nameof(optim.Adamax) },
        { typeof(AdadeltaOptimizer), nameof(optim.Adadelta) },
        { typeof(RmsPropOptimizer), nameof(optim.RMSProp) },
    };

    [Theory]
    [MemberData(nameof(RuleDropIns))]
    public void ARuleDropInsCreateHasTorchSharpsNamesOrderAndDefaults(Type host, string factory)
    {
        var first = typeof(IEnumerable<Parameter>);
        var theirs = typeof(optim).GetMethods(BindingFlags.Public | BindingFlags.Static)
            .Single(m => m.Name == factory && m.GetParameters()[0].ParameterType == first);
        var ours = Presets.Overload(host, "Create", first);
        ours.Should().NotBeNull($"{host.Name}.Create must take a parameter list as torch.optim.{factory} does");
        Differences(theirs, ours!).Should().BeEmpty($"{host.Name}.Create must be a drop-in for torch.optim.{factory}");
    }

    /// <summary>The check finds drifts: a preset with PyTorch's AdamW default and two switched arguments fails it.</summary>
    [Fact]
    public void TheCheckFindsADriftedDefaultAndASwitchedOrder()
    {
        var drift = Drift(typeof(Drifted), nameof(Drifted.TorchAdamW), nameof(optim.AdamW));
        drift.Should().Contain(d => d.Contains("weight_decay") && d.Contains("0.01"));
        drift.Should().Contain(d => d.Contains("'maximize' where TorchSharp's is 'amsgrad'"));
        drift.Should().Contain(d => d.Contains("no overload taking"), "the named-parameter and group forms are missing");
    }

    /// <summary>The drifts that were fixed (issue 13): AdamW's default decay, RMSprop's centered, SGD's learningRate.</summary>
    [Fact]
    public void TheKnownDriftsAreGone()
    {
        var adamW = Presets.Overload(typeof(AdaGraft.Optimizers.GenericSecondMomentOptimizer), "TorchAdamW", typeof(IEnumerable<Parameter>))!;
        adamW.GetParameters().Single(p => p.Name == "weight_decay").DefaultValue.Should().Be(0.0);
        var rms = Presets.Overload(typeof(AdaGraft.Optimizers.GenericSecondMomentOptimizer), "TorchRmsProp", typeof(IEnumerable<Parameter>))!;
        rms.GetParameters()[6].Name.Should().Be("centered");
        rms.GetParameters()[7].Name.Should().Be("maximize");
        var sgd = Presets.Overload(typeof(AdaGraft.Optimizers.GenericSecondMomentOptimizer), "TorchSgd", typeof(IEnumerable<Parameter>))!;
        sgd.GetParameters()[1].Name.Should().Be("learningRate");
    }

    private static class Drifted
    {
        public static object TorchAdamW(IEnumerable<Parameter> parameters, double lr = 1e-3, double beta1 = 0.9, double beta2 = 0.999, double eps = 1e-8, double weight_decay = 0.01, bool maximize = false, bool amsgrad = false)
            => throw new NotSupportedException($"{parameters}{lr}{beta1}{beta2}{eps}{weight_decay}{maximize}{amsgrad}");
    }
}
