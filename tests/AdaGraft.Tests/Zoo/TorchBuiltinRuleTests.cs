namespace AdaGraft.Tests.Zoo;

/// <summary>
/// Every entry of <see cref="OptimizerTable"/> with a TorchSharp reference (Algorithm 1's drop-ins and the rules for
/// TorchSharp's other second-moment built-ins: NAdam, RAdam, Adamax, Adadelta, RMSprop centered or not) reproduces
/// <c>torch.optim.*</c> in float64 over 100 steps with its options varied, on the eager and on the fused CPU path; the fused path equals the eager one on large tensors (float64 and float32); a misused step raises before
/// anything changes, on both paths. (Their state round trip and their grafts run over <see cref="OptimizerTable"/>.)
/// </summary>
public sealed class TorchBuiltinRuleTests
{
    public static TheoryData<string, bool> CasesAndPaths()
    {
        var data = new TheoryData<string, bool>();
        foreach (var name in OptimizerTable.All.Where(e => e.Reference is not null).Select(e => e.Name)) {
            data.Add(name, false);
            data.Add(name, true);
        }
        return data;
    }

    private static readonly string[] OnePerRule = { "nadam-weight-decay", "radam-weight-decay", "adamax-weight-decay", "adadelta-eps-maximize", "rmsprop-centered-all-options" };

    /// <summary>One configuration per rule (for the tests that need not vary every option).</summary>
    public static TheoryData<string, bool> RulesAndPaths()
    {
        var data = new TheoryData<string, bool>();
        foreach (var name in OnePerRule) {
            data.Add(name, false);
            data.Add(name, true);
        }
        return data;
    }

    private static optim.Optimizer Make(string name, IList<Parameter> ps, bool fused) => OptimizerTable.Make(name, ps, fused: fused);

    /// <summary>Turns the fused CPU kernel of <paramref name="opt"/> on or off.</summary>
    private static optim.Optimizer WithPath(optim.Optimizer opt, bool fused)
    {
        OptimizerTable.SetFused(opt, fused);
        return opt;
    }

    private static long FusedCount(optim.Optimizer opt) => OptimizerTable.FusedCount(opt);

    /// <summary>The fixture's shapes (a 0-d scalar and tails shorter than a vector included) and a longer vector.</summary>
    private static readonly long[][] Shapes = Fixtures.Shapes.Append(new long[] { 1_001 }).ToArray();

    [Theory]
    [MemberData(nameof(CasesAndPaths))]
    public void MatchesTheBuiltInOver100Float64Steps(string name, bool fused)
    {
        var a = Fixtures.MakeParameters(Shapes);
        var b = Fixtures.Clone(a);
        var initial = Fixtures.Clone(a);
        using var ours = Make(name, a, fused);
        using var theirs = OptimizerTable.Get(name).Reference!(b);
        Fixtures.WorstDivergence(ours, a, theirs, b, steps: 100).Should().BeLessThanOrEqualTo(1e-10);
        Fixtures.MaxRelativeDifference(a, initial).Should().BeGreaterThan(1e-4, "the parameters moved: the comparison is not of two idle runs");
        (FusedCount(ours) > 0).Should().Be(fused, "the flag decides the path under test");
    }

    /// <summary>
    /// Fused = eager where the fused step splits a tensor into chunks and runs them in parallel (more than 2^16
    /// elements in the step), with a tail shorter than a vector at the end of the last chunk.
    /// </summary>
    [Theory]
    [InlineData(ScalarType.Float64, 1e-10)]
    [InlineData(ScalarType.Float32, 2e-5)]
    public void FusedEqualsEagerOnLargeTensors(ScalarType dtype, double tolerance)
    {
        var shapes = new[] { new long[] { 70_001 }, new long[] { 5 }, Array.Empty<long>() };
        var names = OnePerRule.Append("rmsprop-centered-momentum-only").Append("radam-betas-eps");
        foreach (var name in names) {
            var a = Fixtures.MakeParameters(shapes, dtype);
            var b = Fixtures.Clone(a);
            using var fused = Make(name, a, fused: true);
            using var eager = Make(name, b, fused: false);
            int steps = dtype == ScalarType.Float64 ? 15 : 10;
            Fixtures.RunAll(0, steps, (a, fused), (b, eager));
            Fixtures.MaxRelativeDifference(a, b).Should().BeLessThanOrEqualTo(tolerance, name);
            FusedCount(fused).Should().Be(steps * shapes.Length, name);
            FusedCount(eager).Should().Be(0, name);
        }
    }

    [Theory]
    [MemberData(nameof(RulesAndPaths))]
    public void AGradientOfAnotherShapeRaisesBeforeAnythingChanges(string name, bool fused)
    {
        foreach (long elements in new long[] { 8, 1_000_000 }) {
            var ps = Fixtures.MakeParameters(new[] { new long[] { 64 }, new long[] { 4, 4 } }, ScalarType.Float32);
            using var opt = Make(name, ps, fused);
            Fixtures.SetGradients(ps, 0);
            opt.step();
            Fixtures.SetGradients(ps, 1);
            using (var g = torch.randn(elements)) ps[0].grad = g;
            var before = Fixtures.Snapshot(ps);
            var state = OptimizerTable.SaveState(opt);
            long fusedBefore = FusedCount(opt);
            var ex = opt.Invoking(o => o.step()).Should().Throw<InvalidOperationException>().Which;
            ex.Message.Should().Contain("parameter 0 of shape [64]").And.Contain($"[{elements}]");
            TestTensors.ShouldBeBitIdentical(Fixtures.Snapshot(ps), before, "a step that raises changes no parameter");
            OptimizerTable.SaveState(opt).Should().Equal(state, "a step that raises changes no state");
            FusedCount(opt).Should().Be(fusedBefore);

            // A healthy step afterwards takes the path under test.
            Fixtures.SetGradients(ps, 1);
            opt.step();
            (FusedCount(opt) > fusedBefore).Should().Be(fused);
        }
    }

    /// <summary>
    /// The fused kernels write through data pointers, then advance the version counters of the parameter (always) and
    /// of a state slot the caller was handed: a backward pass through a graph that saved either raises, as after an
    /// eager step.
    /// </summary>
    [Theory]
    [MemberData(nameof(RulesAndPaths))]
    public void SteppingBetweenForwardAndBackwardMakesBackwardRaise(string name, bool fused)
    {
        var ps = Fixtures.MakeParameters(new[] { new long[] { 64 } }, ScalarType.Float32);
        using var opt = Make(name, ps, fused);
        Fixtures.SetGradients(ps, 0);
        opt.step();
        var slot = ((Rules.RuleState)((OptimizerHelper)opt).state_dict().State.Single()).GetSlot(0)!;
        using var x = torch.ones(64).requires_grad_(true);
        var y = (ps[0] * ps[0]).sum();
        var z = (x * slot).sum(); // saves the slot for x's gradient
        Fixtures.SetGradients(ps, 1);
        long before = FusedCount(opt);
        opt.step();
        (FusedCount(opt) > before).Should().Be(fused);
        foreach (var loss in new[] { y, z }) {
            var act = () => loss.backward();
            act.Should().Throw<Exception>("the step changed a tensor the graph saved, in place").Which.Message.Should().Contain("modified by an inplace operation");
        }
    }

    /// <summary>
    /// ε = 0 is the pseudoinverse: a coordinate whose gradient is always exactly 0 (coordinate 0 of every fixture
    /// tensor) has a zero denominator and does not move, where TorchSharp's built-ins would write 0/0 = NaN; every other
    /// coordinate moves and stays finite, and the fused path takes the same steps as the eager one.
    /// </summary>
    [Fact]
    public void EpsilonZeroIsThePseudoinverseOnBothPaths()
    {
        var factories = new Dictionary<string, Func<IList<Parameter>, optim.Optimizer>> {
            ["nadam"] = ps => NAdamOptimizer.Create(ps, 0.01, eps: 0),
            ["radam"] = ps => RAdamOptimizer.Create(ps, 0.3, beta2: 0.9, eps: 0),
            ["adamax"] = ps => AdamaxOptimizer.Create(ps, 0.01, eps: 0),
            ["rmsprop-centered"] = ps => RmsPropOptimizer.CenteredRmsProp(ps, 0.01, eps: 0, momentum: 0.5),
        };
        foreach (var (name, factory) in factories) {
            var shapes = new[] { new long[] { 7 }, new long[] { 3, 5 } };
            var a = Fixtures.MakeParameters(shapes);
            var b = Fixtures.Clone(a);
            var initial = Fixtures.Snapshot(a);
            using var fused = WithPath(factory(a), fused: true);
            using var eager = WithPath(factory(b), fused: false);
            Fixtures.RunAll(0, 20, (a, fused), (b, eager));
            var after = Fixtures.Snapshot(a);
            after.SelectMany(x => x).Should().OnlyContain(v => double.IsFinite(v), name);
            for (int i = 0; i < after.Length; i++) {
                after[i][0].Should().Be(initial[i][0], $"{name}: coordinate 0 never had a gradient");
                after[i].Skip(1).Zip(initial[i].Skip(1)).Should().OnlyContain(p => p.First != p.Second, $"{name}: the other coordinates moved");
            }
            Fixtures.MaxRelativeDifference(a, b).Should().BeLessThanOrEqualTo(1e-10, name);
            FusedCount(fused).Should().BeGreaterThan(0, name);
            FusedCount(eager).Should().Be(0, name);
        }
    }

    /// <summary>
    /// NAdam's running product of μ depends on the history of β1 (a scheduler may cycle it), so it is saved with the
    /// state, not recomputed from the step count: a run whose β1 changed before the save continues bit-identically.
    /// </summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void NAdamMuProductSurvivesACheckpointAfterBeta1Changed(bool fused)
    {
        var w = Fixtures.MakeParameters(Fixtures.Shapes);
        using var original = (NAdamOptimizer)Make("nadam", w, fused);
        for (int step = 0; step < 6; step++) {
            if (step == 3) ((optim.IBetas)original.ParamGroups.Single()).Betas = (0.5, 0.999); // as a scheduler cycling betas would
            Fixtures.SetGradients(w, step);
            original.step();
        }
        var bytes = OptimizerTable.SaveState(original);
        var copy = Fixtures.Clone(w);
        using var restored = (NAdamOptimizer)Make("nadam", copy, fused);
        OptimizerTable.LoadState(restored, bytes);
        restored.StateOf(copy[0]).MuProduct.Should().Be(original.StateOf(w[0]).MuProduct).And.NotBe(1);
        ((optim.IBetas)restored.ParamGroups.Single()).Betas.Should().Be((0.5, 0.999), "the group's options come from the file");
        Fixtures.RunAll(6, 6, (w, original), (copy, restored));
        TestTensors.ShouldBeBitIdentical(Fixtures.Snapshot(copy), Fixtures.Snapshot(w), "after loading");
    }

    /// <summary>
    /// TorchSharp 0.107's RAdam scales its rectified steps by η² (<see cref="RAdamOptimizer.Create"/> reproduces it);
    /// the paper's form scales them by η: the two agree while ρ_t ≤ 5 (the first 5 steps with β2 = 0.999) and differ after.
    /// </summary>
    [Fact]
    public void RAdamPaperFormDiffersFromTorchSharpOnlyInTheRectifiedSteps()
    {
        var a = Fixtures.MakeParameters(Fixtures.Shapes);
        var b = Fixtures.Clone(a);
        using var torchSharp = RAdamOptimizer.Create(a, 0.01);
        using var paper = RAdamOptimizer.CreatePaper(b, 0.01);
        Fixtures.RunAll(0, 5, (a, torchSharp), (b, paper));
        TestTensors.ShouldBeBitIdentical(Fixtures.Snapshot(a), Fixtures.Snapshot(b), "unrectified steps use η once in both");
        var before = Fixtures.Clone(a);
        Fixtures.StepAll(5, (a, torchSharp), (b, paper));
        for (int i = 0; i < a.Count; i++) {
            using var stepTorchSharp = a[i].detach() - before[i].detach();
            using var stepPaper = b[i].detach() - before[i].detach();
            Fixtures.RelativeDifference(stepTorchSharp * 100, stepPaper).Should().BeLessThan(1e-9, "the 6th step is rectified: η² = η/100");
        }
    }
}
