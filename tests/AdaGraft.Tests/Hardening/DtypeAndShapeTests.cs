namespace AdaGraft.Tests.Hardening;

/// <summary>
/// Parameters of different dtypes in one optimizer, a gradient of the wrong dtype, and zero-size and 0-d tensors.
/// </summary>
public class DtypeAndShapeTests
{
    // ---------------------------------------------------------------- float32 and float64 in one optimizer

    private static List<Parameter> MixedDtypeParameters()
    {
        var f32 = Fixtures.MakeParameters(new[] { new long[] { 5 }, Array.Empty<long>() }, ScalarType.Float32, seed: 4);
        var f64 = Fixtures.MakeParameters(new[] { new long[] { 3, 2 } }, ScalarType.Float64, seed: 5);
        return new List<Parameter> { f32[0], f64[0], f32[1] };
    }

    /// <summary>
    /// Five steps of <paramref name="together"/> over <paramref name="mixed"/> and, on the same gradients, of one
    /// optimizer per tensor of <paramref name="alone"/> (built by <paramref name="single"/>, disposed after); then each
    /// tensor keeps its dtype and has exactly the bytes of its copy stepped alone.
    /// </summary>
    private static void ShouldMoveAsAlone(optim.Optimizer together, List<Parameter> mixed, List<Parameter> alone, Func<Parameter, optim.Optimizer> single, string because)
    {
        var singles = alone.Select(single).ToList();
        try {
            for (int step = 0; step < 5; step++) Fixtures.StepAll(step, new IList<Parameter>[] { mixed, alone }, singles.Prepend(together).ToArray());
        } finally {
            foreach (var o in singles) o.Dispose();
        }

        mixed.Select(p => p.dtype).Should().Equal(ScalarType.Float32, ScalarType.Float64, ScalarType.Float32);
        HardeningSupport.ShouldEqualBytes(HardeningSupport.RawBytes(mixed), HardeningSupport.RawBytes(alone), because);
    }

    [Theory]
    [MemberData(nameof(OptimizerTable.GenericNames), MemberType = typeof(OptimizerTable))]
    public void Float32AndFloat64ParametersInOneOptimizerEachMoveAsInAnOptimizerOfTheirOwn(string name)
    {
        var mixed = MixedDtypeParameters();
        var alone = Fixtures.Clone(mixed);
        var before = HardeningSupport.RawBytes(mixed);
        using var opt = OptimizerTable.CreateGeneric(name, mixed);
        ShouldMoveAsAlone(opt, mixed, alone, p => OptimizerTable.CreateGeneric(name, new[] { p }), "each tensor must move exactly as under an optimizer of its own dtype");
        var after = HardeningSupport.RawBytes(mixed);
        for (int i = 0; i < after.Length; i++) after[i].Should().NotEqual(before[i], $"tensor {i} must have moved");
        foreach (var p in mixed) {
            var state = opt.StateOf(p);
            foreach (var slot in new[] { state.FirstMoment, state.SecondMoment, state.MaxSecondMoment }.Where(t => t is not null))
                slot!.dtype.Should().Be(p.dtype, "the state of a tensor has the tensor's dtype");
        }
    }

    public static TheoryData<GraftPath, GraftGranularity> GraftCases() => new() {
        { GraftPath.ClosedForm, GraftGranularity.PerTensor },
        { GraftPath.ClosedForm, GraftGranularity.PerBlock },
        { GraftPath.BlackBox, GraftGranularity.PerTensor },
        { GraftPath.BlackBox, GraftGranularity.PerBlock },
    };

    [Theory]
    [MemberData(nameof(GraftCases))]
    public void Float32AndFloat64ParametersInOneGraftEachMoveAsInAGraftOfTheirOwn(GraftPath path, GraftGranularity granularity)
    {
        var mixed = MixedDtypeParameters();
        var alone = Fixtures.Clone(mixed);
        var options = new GraftOptions { Path = path, Granularity = granularity, BlockSize = 2, OwnsChildren = true };
        using var graft = new GraftOptimizer(GenericSecondMomentOptimizer.HeavyBall(mixed, 0.05), GenericSecondMomentOptimizer.Adam(mixed, 1), options);
        ShouldMoveAsAlone(graft, mixed, alone, p => new GraftOptimizer(GenericSecondMomentOptimizer.HeavyBall(new[] { p }, 0.05), GenericSecondMomentOptimizer.Adam(new[] { p }, 1), options),
            "under per-tensor and per-block grafting each tensor is grafted on its own");
    }

    [Theory]
    [InlineData(GraftPath.ClosedForm)]
    [InlineData(GraftPath.BlackBox)]
    public void Float32AndFloat64ParametersUnderGlobalGraftingMatchAFloat64Graft(GraftPath path)
    {
        // The global norm mixes both dtypes; it must be taken in float64, so the float64 tensor moves as in an
        // all-float64 graft to round-off, and the float32 ones to float32 precision.
        var mixed = MixedDtypeParameters();
        var wide = mixed.Select(p => new Parameter(p.detach().to_type(ScalarType.Float64).clone())).ToList();
        var options = new GraftOptions { Path = path, Granularity = GraftGranularity.Global, OwnsChildren = true };
        using var graft = new GraftOptimizer(GenericSecondMomentOptimizer.HeavyBall(mixed, 0.05), GenericSecondMomentOptimizer.Adam(mixed, 1), options);
        using var reference = new GraftOptimizer(GenericSecondMomentOptimizer.HeavyBall(wide, 0.05), GenericSecondMomentOptimizer.Adam(wide, 1), options);
        var start = Fixtures.Snapshot(mixed);
        for (int step = 0; step < 5; step++) {
            Fixtures.SetGradients(wide, step);
            foreach (var (p, w) in mixed.Zip(wide)) {
                using var g = w.grad!;
                p.grad = g.to_type(p.dtype);
            }
            graft.step();
            reference.step();
        }

        Fixtures.MaxRelativeDifference(new[] { mixed[1] }, new[] { wide[1] }).Should().BeLessThan(1e-6);
        Fixtures.MaxRelativeDifference(new[] { mixed[0], mixed[2] }, new[] { wide[0], wide[2] }).Should().BeLessThan(1e-5);
        Fixtures.Snapshot(mixed).SelectMany(x => x).Should().NotEqual(start.SelectMany(x => x));
    }

    // ---------------------------------------------------------------- a gradient of another dtype

    private static readonly string[] MismatchKinds = { "optimizer", "closed-form", "black-box", "black-box-built-in" };

    public static TheoryData<string> MismatchCases() => new(MismatchKinds);

    private static optim.Optimizer MakeForMismatch(string kind, IList<Parameter> ps) => kind switch {
        "optimizer" => GenericSecondMomentOptimizer.TorchAdam(ps, lr: 0.01),
        "closed-form" => new GraftOptimizer(GenericSecondMomentOptimizer.HeavyBall(ps, 0.05), GenericSecondMomentOptimizer.Adam(ps, 1), new GraftOptions { Path = GraftPath.ClosedForm, OwnsChildren = true }),
        "black-box" => new GraftOptimizer(GenericSecondMomentOptimizer.HeavyBall(ps, 0.05), GenericSecondMomentOptimizer.Adam(ps, 1), new GraftOptions { Path = GraftPath.BlackBox, OwnsChildren = true }),
        _ => new GraftOptimizer(optim.SGD(ps, 0.05, momentum: 0.9), optim.Adam(ps, 1), new GraftOptions { Path = GraftPath.BlackBox, OwnsChildren = true }),
    };

    private static byte[] StateBytes(optim.Optimizer opt) => opt switch {
        GraftOptimizer g => HardeningSupport.SaveToBytes(g),
        GenericSecondMomentOptimizer o => HardeningSupport.SaveToBytes(o),
        _ => throw new ArgumentOutOfRangeException(nameof(opt)),
    };

    /// <summary>Two steps, then a float32 gradient on the last float64 tensor; the tensors before it have good gradients.</summary>
    private static (List<Parameter> Ps, optim.Optimizer Opt) PrepareMismatch(string kind)
    {
        var ps = Fixtures.MakeParameters(new[] { new long[] { 4 }, new long[] { 2, 3 } });
        var opt = MakeForMismatch(kind, ps);
        Fixtures.Run(opt, ps, 0, 2);
        Fixtures.SetGradients(ps, 2);
        using (var g = ps[1].grad!) ps[1].grad = g.to_type(ScalarType.Float32);
        return (ps, opt);
    }

    [Theory]
    [MemberData(nameof(MismatchCases))]
    public void AGradientOfAnotherDtypeThrowsBeforeAnythingChanges(string kind)
    {
        var (ps, opt) = PrepareMismatch(kind);
        using var owned = opt;
        var before = HardeningSupport.RawBytes(ps);
        var state = StateBytes(opt);

        var ex = opt.Invoking(o => o.step()).Should().Throw<InvalidOperationException>().Which;

        ex.Message.Should().Contain("gradient").And.Contain("Float32").And.Contain("Float64").And.Contain("[2, 3]", "the message names the tensor by its shape");
        HardeningSupport.ShouldEqualBytes(HardeningSupport.RawBytes(ps), before, "no parameter may move");
        StateBytes(opt).Should().Equal(state, "no state may advance");
        using (var g = ps[1].grad!) g.dtype.Should().Be(ScalarType.Float32, "the gradient is left as it was");
    }

    [Fact]
    public void AGradientOfAnotherDtypeIsReportedWithTheFix()
    {
        // Every path reports the mismatch; the message must also say what to do, e.g. "cast the gradient to the
        // parameter's dtype (grad.to(param.dtype))".
        var withoutFix = new List<string>();
        foreach (var kind in MismatchKinds) {
            var (_, opt) = PrepareMismatch(kind);
            using var owned = opt;
            var ex = opt.Invoking(o => o.step()).Should().Throw<InvalidOperationException>().Which;
            if (!System.Text.RegularExpressions.Regex.IsMatch(ex.Message, "(?i)(cast|convert|\\.to\\(|to_type|same dtype)"))
                withoutFix.Add($"{kind}: {ex.Message}");
        }

        withoutFix.Should().BeEmpty("a clear error says how to fix it");
    }

    // ---------------------------------------------------------------- zero-size and 0-d tensors

    private static readonly long[][] EdgeShapes = { new long[] { 0 }, new long[] { 4 }, new long[] { 3, 0 }, Array.Empty<long>() };
    private static readonly int[] NonEmpty = { 1, 3 };

    [Theory]
    [MemberData(nameof(OptimizerTable.GenericNames), MemberType = typeof(OptimizerTable))]
    public void ZeroSizeAnd0dTensorsStepAndRoundTripWithoutNaN(string name)
    {
        var ps = Fixtures.MakeParameters(EdgeShapes);
        var reference = Fixtures.Clone(NonEmpty.Select(i => ps[i]));
        using var opt = OptimizerTable.CreateGeneric(name, ps);
        using var referenceOpt = OptimizerTable.CreateGeneric(name, reference);
        for (int step = 0; step < 4; step++) {
            SetEdgeGradients(ps, reference, step);
            opt.step();
            referenceOpt.step();
        }
        var saved = HardeningSupport.SaveToBytes(opt);
        var resumed = Fixtures.Clone(ps);
        using var resumedOpt = OptimizerTable.CreateGeneric(name, resumed);
        Support.TestTensors.LoadState(resumedOpt, saved);
        HardeningSupport.SaveToBytes(resumedOpt).Should().Equal(saved);
        ShouldContinueAsOneRun((ps, opt), (reference, referenceOpt), (resumed, resumedOpt), "zero-size tensors beside them change nothing");
        foreach (var p in ps) opt.StateOf(p).Step.Should().Be(8);
    }

    public static TheoryData<string, string, GraftPath, GraftGranularity> EdgeGraftCases()
    {
        var data = new TheoryData<string, string, GraftPath, GraftGranularity>();
        foreach (var g in new[] { GraftGranularity.PerTensor, GraftGranularity.Global, GraftGranularity.PerBlock }) {
            data.Add("paper-heavyball", "paper-adam", GraftPath.ClosedForm, g);
            data.Add("paper-adam", "paper-adagrad", GraftPath.BlackBox, g);
            data.Add("torch-heavyball", "torch-adam", GraftPath.BlackBox, g);
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(EdgeGraftCases))]
    public void ZeroSizeAnd0dTensorsGraftAndRoundTripWithoutNaN(string m, string d, GraftPath path, GraftGranularity granularity)
    {
        var options = new GraftOptions { Path = path, Granularity = granularity, BlockSize = 2, OwnsChildren = true };
        GraftOptimizer Make(IList<Parameter> w) => new(ChildCatalog.Make(m, w), ChildCatalog.Make(d, w), options);
        var ps = Fixtures.MakeParameters(EdgeShapes);
        var reference = Fixtures.Clone(NonEmpty.Select(i => ps[i]));
        using var graft = Make(ps);
        using var referenceGraft = Make(reference);
        for (int step = 0; step < 4; step++) {
            SetEdgeGradients(ps, reference, step);
            graft.step();
            referenceGraft.step();
        }
        var norms = graft.LastNorms!;
        foreach (int i in new[] { 0, 2 }) {
            Values(norms.Magnitude[i]!).Should().OnlyContain(v => v == 0, $"tensor {i} is empty: ‖ΔM‖ = 0");
            Values(norms.Direction[i]!).Should().OnlyContain(v => v == 0, $"tensor {i} is empty: ‖ΔD‖ = 0");
            // Its own ratio is 0/0 := 0; under global grafting it gets the global ratio like every tensor.
            double expected = granularity == GraftGranularity.Global ? Values(norms.GlobalRatio)[0] : 0;
            Values(norms.Ratio[i]!).Should().OnlyContain(v => v == expected, $"tensor {i} is empty: its ratio is {expected}, not NaN");
        }
        Values(norms.GlobalRatio).Should().OnlyContain(v => double.IsFinite(v) && v > 0);
        foreach (int i in NonEmpty) Values(norms.Ratio[i]!).Should().OnlyContain(v => double.IsFinite(v) && v > 0);

        var saved = HardeningSupport.SaveToBytes(graft);
        var resumed = Fixtures.Clone(ps);
        using var resumedGraft = Make(resumed);
        HardeningSupport.LoadFromBytes(resumedGraft, saved);
        HardeningSupport.SaveToBytes(resumedGraft).Should().Equal(saved);
        ShouldContinueAsOneRun((ps, graft), (reference, referenceGraft), (resumed, resumedGraft), "zero-size tensors beside them change nothing, also in the global norm");
    }

    /// <summary>
    /// Steps 4 … 7 of the edge-shaped run, of its reference over copies of the non-empty tensors (the same gradients,
    /// <see cref="SetEdgeGradients"/>), and of the run resumed from the edge run's checkpoint after step 3; then the
    /// shapes are kept, nothing is NaN, the non-empty tensors equal the reference's bit for bit
    /// (<paramref name="because"/>), and the resumed run equals the uninterrupted one bit for bit.
    /// </summary>
    private static void ShouldContinueAsOneRun((List<Parameter> Ps, optim.Optimizer Opt) edge, (List<Parameter> Ps, optim.Optimizer Opt) reference,
        (List<Parameter> Ps, optim.Optimizer Opt) resumed, string because)
    {
        for (int step = 4; step < 8; step++) {
            SetEdgeGradients(edge.Ps, reference.Ps, step);
            Fixtures.SetGradients(resumed.Ps, step);
            edge.Opt.step();
            reference.Opt.step();
            resumed.Opt.step();
        }

        edge.Ps.Select(p => p.shape).Should().BeEquivalentTo(EdgeShapes, o => o.WithStrictOrdering());
        HardeningSupport.AllFinite(edge.Ps).Should().BeTrue();
        HardeningSupport.ShouldEqualBytes(HardeningSupport.RawBytes(NonEmpty.Select(i => edge.Ps[i])), HardeningSupport.RawBytes(reference.Ps), because);
        HardeningSupport.ShouldEqualBytes(HardeningSupport.RawBytes(resumed.Ps), HardeningSupport.RawBytes(edge.Ps), "the state round trip continues bit-identically");
    }

    /// <summary>The same gradients for the non-empty tensors of <paramref name="ps"/> and for their copies.</summary>
    private static void SetEdgeGradients(List<Parameter> ps, List<Parameter> reference, int step)
    {
        Fixtures.SetGradients(ps, step);
        for (int k = 0; k < NonEmpty.Length; k++) {
            using var g = ps[NonEmpty[k]].grad!;
            reference[k].grad = g.clone();
        }
    }

    private static double[] Values(Tensor t) => Support.TestTensors.Values(t);
}
