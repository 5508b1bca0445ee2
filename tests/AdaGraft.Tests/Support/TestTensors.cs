namespace AdaGraft.Tests.Support;

/// <summary>Small helpers for hand-derived tests: float64 vectors, gradients, state bytes and exact comparisons.</summary>
public static class TestTensors
{
    /// <summary>A float64 vector parameter with the given values.</summary>
    public static Parameter Vector(params double[] values) => new(torch.tensor(values, ScalarType.Float64));

    /// <summary>Sets <paramref name="p"/>'s gradient to a float64 tensor with the given values (same shape as p).</summary>
    public static void SetGrad(Parameter p, params double[] values)
    {
        using var g = torch.tensor(values, ScalarType.Float64);
        p.grad = g.reshape(p.shape).clone();
    }

    /// <summary>The values of <paramref name="t"/> as a flat double array.</summary>
    /// <remarks>
    /// The temporaries stay in a dispose scope until the copy is done: TorchSharp's <c>data&lt;T&gt;().ToArray()</c>
    /// copies through a raw pointer and does not keep its tensor alive, so a temporary tensor that nothing else
    /// references can be finalized, and its memory freed, by a garbage collection in the middle of the copy.
    /// </remarks>
    public static double[] Values(Tensor t)
    {
        using var scope = torch.NewDisposeScope();
        return t.detach().to_type(ScalarType.Float64).cpu().contiguous().data<double>().ToArray();
    }

    /// <summary>The optimizer's complete saved state (options and per-tensor state) as bytes.</summary>
    public static byte[] SaveState<TOptions, TState>(RuleOptimizer<TOptions, TState> opt)
        where TOptions : Rules.RuleOptions, new()
        where TState : Rules.RuleState
        => StateBytes.Save(opt.save_state_dict);

    /// <summary>Loads bytes written by <see cref="SaveState{TOptions, TState}"/>.</summary>
    public static void LoadState<TOptions, TState>(RuleOptimizer<TOptions, TState> opt, byte[] bytes)
        where TOptions : Rules.RuleOptions, new()
        where TState : Rules.RuleState
        => StateBytes.Load(bytes, opt.load_state_dict);

    /// <summary>Asserts two snapshots are bit-identical (reports the first difference).</summary>
    public static void ShouldBeBitIdentical(double[][] actual, double[][] expected, string because = "")
    {
        actual.Length.Should().Be(expected.Length, because);
        for (int i = 0; i < actual.Length; i++) {
            actual[i].Length.Should().Be(expected[i].Length, because);
            for (int j = 0; j < actual[i].Length; j++) {
                if (BitConverter.DoubleToInt64Bits(actual[i][j]) != BitConverter.DoubleToInt64Bits(expected[i][j]))
                    throw new Xunit.Sdk.XunitException($"Tensor {i}, element {j}: {actual[i][j]:R} and {expected[i][j]:R} are not bit-identical {because}");
            }
        }
    }

    /// <summary>Asserts |actual − expected| ≤ tolerance elementwise.</summary>
    public static void ShouldBeClose(double[] actual, double[] expected, double tolerance, string what)
    {
        actual.Length.Should().Be(expected.Length, what);
        for (int i = 0; i < actual.Length; i++) {
            actual[i].Should().BeApproximately(expected[i], tolerance, $"{what}, element {i}");
        }
    }

    /// <summary>True when every element of <paramref name="t"/> is finite.</summary>
    public static bool AllFinite(Tensor t)
    {
        using var finite = torch.isfinite(t.detach()).all();
        return finite.item<bool>();
    }

    /// <summary>A copy of an optimizer's default options (so that a second optimizer can be built with them).</summary>
    public static Rules.SecondMomentOptions CopyDefaults(GenericSecondMomentOptimizer opt)
    {
        var copy = new Rules.SecondMomentOptions();
        copy.LoadStateDict(opt.Defaults);
        return copy;
    }

    /// <summary>The defaults of a catalog configuration, built over a throwaway parameter.</summary>
    public static Rules.SecondMomentOptions DefaultsOf(Func<IEnumerable<Parameter>, GenericSecondMomentOptimizer> factory)
    {
        using var opt = factory(new[] { Vector(1.0) });
        return CopyDefaults(opt);
    }
}
