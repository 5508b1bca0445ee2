namespace AdaGraft.Tests.DropIn;

/// <summary>
/// A drop-in accepts exactly what the built-in accepts: for every numeric argument of every TorchSharp-compatible preset
/// and a spread of values (negative, 0, inside, 1, above 1), the built-in is asked first; where it accepts, the preset
/// accepts and takes the same steps (float64, 1e-10, fused and eager, NaN where the built-in gives NaN); where it
/// refuses, the preset refuses naming the argument. NaN is the one value refused beyond TorchSharp (whose SGD accepts it).
/// </summary>
public sealed class TorchAcceptedValuesTests
{
    private static readonly double[] Probes = { -0.5, 0, 0.5, 1, 1.5 };

    public static TheoryData<string, string, double> Cases {
        get {
            var data = new TheoryData<string, string, double>();
            foreach (var (host, preset, factory) in Presets.TorchTable) {
                var theirs = Presets.TorchFactory(factory);
                foreach (var p in theirs.GetParameters().Skip(1).Where(p => p.ParameterType == typeof(double))) {
                    foreach (var v in Probes) data.Add(preset, p.Name!, v);
                }
            }
            return data;
        }
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void ThePresetAcceptsWhatTheBuiltInAcceptsAndStepsTheSame(string preset, string argument, double value)
    {
        var (host, name, factory) = Presets.TorchRow(preset);
        var theirsFactory = Presets.TorchFactory(factory);
        var oursFactory = Presets.Overload(host, name, typeof(IEnumerable<Parameter>))!;
        var arguments = new Dictionary<string, object?> { [argument] = value };
        // SGD's dampening only acts with momentum.
        if (argument == "dampening") arguments["momentum"] = 0.9;

        var a = Fixtures.MakeParameters(Fixtures.Shapes);
        var b = Fixtures.Clone(a);
        var c = Fixtures.Clone(a);
        optim.Optimizer theirs;
        try {
            theirs = (optim.Optimizer)Presets.Invoke(theirsFactory, b, arguments);
        } catch (ArgumentException) {
            var ex = FluentActions.Invoking(() => Presets.Invoke(oursFactory, a, arguments))
                .Should().Throw<ArgumentException>($"TorchSharp's {factory} refuses {argument} = {value}").Which;
            ex.ParamName.Should().Be(argument, $"the error must name the argument as typed; it said: {ex.Message}");
            return;
        }
        using var _ = theirs;
        using var fused = (GenericSecondMomentOptimizer)Presets.Invoke(oursFactory, a, arguments);
        using var eager = (GenericSecondMomentOptimizer)Presets.Invoke(oursFactory, c, arguments);
        eager.FusedCpuKernel = false;

        // ε = 0 is the pseudoinverse here (a coordinate whose accumulator is 0 does not move) where TorchSharp divides
        // 0 by 0; the fixtures' coordinate 0 has a zero gradient, so only acceptance is compared for it.
        bool compare = !(argument == "eps" && value == 0);
        for (int step = 0; step < 20; step++) {
            foreach (var ps in new[] { a, b, c }) Fixtures.SetGradients(ps, step);
            fused.step();
            eager.step();
            theirs.step();
            if (!compare) continue;
            for (int i = 0; i < a.Count; i++) {
                ShouldMatch(a[i], b[i], $"fused {preset}({argument}: {value}), tensor {i}, step {step}");
                ShouldMatch(c[i], b[i], $"eager {preset}({argument}: {value}), tensor {i}, step {step}");
            }
        }
        fused.FusedTensorSteps.Should().BeGreaterThan(0, "the fused kernel took these steps");
    }

    /// <summary>Equal NaN pattern, and the finite values equal to 1e-10 relative to their largest magnitude.</summary>
    internal static void ShouldMatch(Tensor ours, Tensor theirs, string because)
    {
        using var scope = torch.NewDisposeScope();
        var o = ours.detach().to_type(ScalarType.Float64);
        var t = theirs.detach().to_type(ScalarType.Float64);
        o.isnan().eq(t.isnan()).all().item<bool>().Should().BeTrue($"NaN where the built-in has NaN ({because})");
        var finite = t.isfinite().logical_and(o.isfinite());
        o.isfinite().eq(t.isfinite()).all().item<bool>().Should().BeTrue($"infinite where the built-in is infinite ({because})");
        if (!finite.any().item<bool>()) return;
        var of = o.masked_select(finite);
        var tf = t.masked_select(finite);
        double scale = Math.Max(tf.abs().max().item<double>(), 1e-300);
        ((of - tf).abs().max().item<double>() / scale).Should().BeLessThanOrEqualTo(1e-10, because);
    }
}
