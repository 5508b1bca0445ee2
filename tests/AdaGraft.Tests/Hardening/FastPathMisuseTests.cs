namespace AdaGraft.Tests.Hardening;

/// <summary>
/// The fused CPU path is never less safe than the eager one: every misuse TorchSharp lets through (a gradient of
/// another shape, a parameter given new storage after its state was built, parameters sharing memory, a step between
/// a forward pass and its backward pass) gets the same exception on both paths, for a single optimizer, a closed-form
/// graft and black-box grafts, and a step that raises leaves parameters and state as they were.
/// </summary>
public sealed class FastPathMisuseTests
{
    public enum Kind { OneOptimizer, ClosedForm, BlackBoxRules, BlackBoxBuiltins }

    public static TheoryData<Kind, bool> KindsAndPaths()
    {
        var data = new TheoryData<Kind, bool>();
        foreach (var kind in Enum.GetValues<Kind>()) {
            data.Add(kind, true);
            data.Add(kind, false);
        }
        return data;
    }

    public static TheoryData<Kind> Kinds() => new(Enum.GetValues<Kind>());

    /// <summary>
    /// An optimizer of one kind over <paramref name="ps"/>, on the fused or the eager path: the table's <c>torch-adam</c>
    /// alone, or as D under heavy ball (lr 0.02) in closed form or as a black box; or a black box of TorchSharp's built-ins.
    /// </summary>
    private static optim.Optimizer Make(Kind kind, bool fused, IList<Parameter> ps)
    {
        optim.Optimizer Adam() => OptimizerTable.Make("torch-adam", ps, fused: fused);
        optim.Optimizer HeavyBall()
        {
            var o = GenericSecondMomentOptimizer.HeavyBall(ps, 0.02);
            OptimizerTable.SetFused(o, fused);
            return o;
        }
        var options = new GraftOptions { FusedCpuKernel = fused, OwnsChildren = true };
        return kind switch {
            Kind.OneOptimizer => Adam(),
            Kind.ClosedForm => new GraftOptimizer(HeavyBall(), Adam(), options),
            Kind.BlackBoxRules => new GraftOptimizer(HeavyBall(), Adam(), options with { Path = GraftPath.BlackBox }),
            _ => new GraftOptimizer(optim.SGD(ps, 0.02, momentum: 0.9), optim.Adam(ps, 0.01), options),
        };
    }

    /// <summary>How many steps (or tensor steps) took the fused path so far.</summary>
    private static long FusedCount(optim.Optimizer opt) => opt is GraftOptimizer g ? g.FusedSteps : OptimizerTable.FusedCount(opt);

    private static byte[] StateBytes(optim.Optimizer opt) => OptimizerTable.SaveState(opt);

    /// <summary>Two float32 parameters ([64] and [4, 4]) with gradients, after one healthy step (the state exists).</summary>
    private static (List<Parameter> ps, optim.Optimizer opt) Warm(Kind kind, bool fused)
    {
        var ps = Fixtures.MakeParameters(new[] { new long[] { 64 }, new long[] { 4, 4 } }, ScalarType.Float32);
        var opt = Make(kind, fused, ps);
        Fixtures.SetGradients(ps, 0);
        opt.step();
        Fixtures.SetGradients(ps, 1);
        return (ps, opt);
    }

    private static Exception? Capture(Action act)
    {
        try {
            act();
            return null;
        } catch (Exception e) {
            return e;
        }
    }

    [Theory]
    [MemberData(nameof(KindsAndPaths))]
    public void AHealthyStepTakesThePathTheseTestsCompare(Kind kind, bool fused)
    {
        if (kind == Kind.BlackBoxBuiltins && !fused) return; // the eager black box has no counter; nothing to compare
        var (_, opt) = Warm(kind, fused);
        using (opt) {
            long before = FusedCount(opt);
            opt.step();
            (FusedCount(opt) > before).Should().Be(fused, "the fused flag decides the path these misuse tests compare");
        }
    }

    [Theory]
    [MemberData(nameof(KindsAndPaths))]
    public void AGradientOfAnotherShapeRaisesBeforeAnythingChanges(Kind kind, bool fused)
    {
        foreach (long elements in new long[] { 8, 1_000_000 }) {
            var (ps, opt) = Warm(kind, fused);
            using (opt) {
                using (var g = torch.randn(elements)) ps[0].grad = g;
                var before = Fixtures.Snapshot(ps);
                var state = StateBytes(opt);
                var ex = opt.Invoking(o => o.step()).Should().Throw<InvalidOperationException>().Which;
                ex.Message.Should().Contain("parameter 0 of shape [64]").And.Contain($"[{elements}]");
                TestTensors.ShouldBeBitIdentical(Fixtures.Snapshot(ps), before, "a step that raises changes no parameter");
                StateBytes(opt).Should().Equal(state, "a step that raises changes no state");
            }
        }
    }

    [Theory]
    [MemberData(nameof(KindsAndPaths))]
    public void NewStorageOfAnotherSizeRaisesBeforeAnythingChanges(Kind kind, bool fused)
    {
        foreach (long size in new long[] { 4096, 8 }) {
            var (ps, opt) = Warm(kind, fused);
            using (opt) {
                using (torch.no_grad())
                using (var storage = torch.zeros(size)) ps[0].set_(storage);
                var before = Fixtures.Snapshot(ps);
                var state = StateBytes(opt);

                // The old gradient no longer fits: caught by the gradient check.
                opt.Invoking(o => o.step()).Should().Throw<InvalidOperationException>().Which.Message.Should().Contain($"[{size}]");

                // A gradient that fits the new storage: the state, built at 64 elements, no longer does.
                using (var g = torch.ones(size)) ps[0].grad = g;
                var ex = Capture(() => opt.step());
                ex.Should().NotBeNull();
                TestTensors.ShouldBeBitIdentical(Fixtures.Snapshot(ps), before, "a step that raises changes no parameter (a black box restores them)");
                if (kind != Kind.BlackBoxBuiltins) {
                    ex.Should().BeOfType<InvalidOperationException>().Which.Message.Should().Contain("parameter 0 of shape").And.Contain("set_");
                    StateBytes(opt).Should().Equal(state, "a step that raises changes no state");
                }
            }
        }
    }

    [Theory]
    [MemberData(nameof(Kinds))]
    public void EveryMisuseRaisesTheSameExceptionTypeOnBothPaths(Kind kind)
    {
        Type? Run(bool fused, Action<List<Parameter>> misuse)
        {
            var (ps, opt) = Warm(kind, fused);
            using (opt) {
                misuse(ps);
                return Capture(() => opt.step())?.GetType();
            }
        }
        var misuses = new Dictionary<string, Action<List<Parameter>>> {
            ["gradient of 8 elements"] = ps => {
                using var g = torch.randn(8);
                ps[0].grad = g;
            },
            ["larger storage, fitting gradient"] = ps => {
                using (torch.no_grad()) using (var s = torch.zeros(4096)) ps[0].set_(s);
                using var g = torch.ones(4096);
                ps[0].grad = g;
            },
            ["smaller storage, fitting gradient"] = ps => {
                using (torch.no_grad()) using (var s = torch.zeros(8)) ps[0].set_(s);
                using var g = torch.ones(8);
                ps[0].grad = g;
            },
        };
        foreach (var (name, misuse) in misuses) {
            var eager = Run(false, misuse);
            var fast = Run(true, misuse);
            eager.Should().NotBeNull($"'{name}' raises on the eager path");
            fast.Should().Be(eager, $"'{name}' raises the same exception on the fused path as on the eager one");
        }
    }

    [Theory]
    [MemberData(nameof(KindsAndPaths))]
    public void ParametersThatShareMemoryRaiseBeforeAnythingChanges(Kind kind, bool fused)
    {
        using var baseTensor = torch.randn(128);
        var ps = new List<Parameter> { new(baseTensor.narrow(0, 0, 64)), new(baseTensor.narrow(0, 32, 64)) };
        using (torch.no_grad()) baseTensor[40] = torch.tensor(123f);
        ps[0][40].item<float>().Should().Be(123f, "the parameters are views of one tensor (the case under test)");
        using var opt = Make(kind, fused, ps);
        Fixtures.SetGradients(ps, 0);
        var before = Fixtures.Snapshot(ps);
        var ex = opt.Invoking(o => o.step()).Should().Throw<InvalidOperationException>().Which;
        ex.Message.Should().Contain("parameter 0 of shape [64]").And.Contain("parameter 1 of shape [64]").And.Contain("share memory");
        TestTensors.ShouldBeBitIdentical(Fixtures.Snapshot(ps), before, "a step that raises changes no parameter");
    }

    [Theory]
    [MemberData(nameof(KindsAndPaths))]
    public void ViewsOfOneTensorThatDoNotOverlapAreSteppedAsSeparateTensors(Kind kind, bool fused)
    {
        using var baseTensor = torch.randn(128, ScalarType.Float64);
        var views = new List<Parameter> { new(baseTensor.narrow(0, 0, 64)), new(baseTensor.narrow(0, 64, 64)) };
        var separate = views.Select(v => new Parameter(v.detach().clone())).ToList();
        using var a = Make(kind, fused, views);
        using var b = Make(kind, fused, separate);
        Fixtures.RunAll(0, 3, (views, a), (separate, b));
        TestTensors.ShouldBeBitIdentical(Fixtures.Snapshot(views), Fixtures.Snapshot(separate), "disjoint views are ordinary parameters");
    }

    [Theory]
    [MemberData(nameof(KindsAndPaths))]
    public void SteppingBetweenForwardAndBackwardMakesBackwardRaise(Kind kind, bool fused)
    {
        var (ps, opt) = Warm(kind, fused);
        using (opt) {
            var y = (ps[0] * ps[0]).sum() + (ps[1] * ps[1]).sum();
            opt.step();
            var ex = Capture(() => y.backward());
            ex.Should().NotBeNull("the step changed tensors the graph saved, in place, and autograd must notice (as after an eager step)");
            ex!.Message.Should().Contain("modified by an inplace operation");
        }
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void AStateSlotHandedOutAndUsedInAGraphMakesBackwardRaiseAfterAStep(bool fused)
    {
        var ps = Fixtures.MakeParameters(new[] { new long[] { 64 } }, ScalarType.Float32);
        using var opt = (GenericSecondMomentOptimizer)Make(Kind.OneOptimizer, fused, ps);
        Fixtures.SetGradients(ps, 0);
        opt.step();
        var m1 = opt.StateOf(ps[0]).FirstMoment!;
        using var x = torch.ones(64).requires_grad_(true);
        var y = (x * m1).sum(); // saves m1 for x's gradient
        Fixtures.SetGradients(ps, 1);
        opt.step();
        var ex = Capture(() => y.backward());
        ex.Should().NotBeNull("the step wrote the first moment in place after the graph saved it");
        ex!.Message.Should().Contain("modified by an inplace operation");
    }

    [Fact]
    public void TheNativeVersionBumpIsFoundAndReadsTheCounterEveryInPlaceOperationAdvances()
    {
        // The handle passed as at::Tensor const& must be what libtorch reads: its version counter moves with in-place ops.
        Rules.NativeVersion.Available.Should().BeTrue($"libtorch_cpu.so exports bump_version here ({Rules.NativeVersion.Reason})");
        using var t = torch.zeros(5);
        using var view = t.narrow(0, 1, 2);
        long v0 = Rules.NativeVersion.Version(t);
        t.add_(1);
        view.mul_(2);
        Rules.NativeVersion.Version(t).Should().Be(v0 + 2, "two in-place operations, one through a view sharing the counter");
        Rules.NativeVersion.Bump(t);
        Rules.NativeVersion.Version(t).Should().Be(v0 + 3);
        Rules.NativeVersion.Version(view).Should().Be(v0 + 3, "a view shares its base's counter");
    }

    [Theory]
    [MemberData(nameof(Kinds))]
    public void AFusedStepAdvancesTheParameterVersionByOneAndUnexposedSlotsNotAtAll(Kind kind)
    {
        if (kind == Kind.BlackBoxBuiltins) return; // the built-ins' own in-place operations count there
        var (ps, opt) = Warm(kind, fused: true);
        using (opt) {
            long before = Rules.NativeVersion.Version(ps[0]);
            var slots = opt is GenericSecondMomentOptimizer one
                ? new[] { one.StateOf(ps[0]).SlotAt(0)!, one.StateOf(ps[0]).SlotAt(1)! }
                : Array.Empty<Tensor>();
            var slotsBefore = slots.Select(Rules.NativeVersion.Version).ToArray();
            Fixtures.SetGradients(ps, 5);
            opt.step();
            long advanced = Rules.NativeVersion.Version(ps[0]) - before;
            // One write per step on the fused single and closed-form paths; the black box writes (runs M, restores,
            // runs D, combines) several times, each counted.
            if (kind == Kind.BlackBoxRules) advanced.Should().BeGreaterThan(1);
            else advanced.Should().Be(1);
            slots.Select(Rules.NativeVersion.Version).Should().Equal(slotsBefore, "slots never handed out are in no graph");
        }
    }

    /// <summary>Child process: with the native bump switched off, the empty-view fallback still makes backward raise.</summary>
    [ChildScenario("version-fallback")]
    public static int RunVersionFallback(string[] args)
    {
        Rules.NativeVersion.Available = false;
        foreach (var kind in Enum.GetValues<Kind>()) {
            var (ps, opt) = Warm(kind, fused: true);
            using (opt) {
                var y = (ps[0] * ps[0]).sum() + (ps[1] * ps[1]).sum();
                opt.step();
                var ex = Capture(() => y.backward());
                Console.WriteLine($"{kind} | {(ex?.Message.Contains("modified by an inplace operation", StringComparison.Ordinal) == true ? "raised" : "silent")}");
            }
        }
        return 0;
    }

    [Fact]
    public void WithoutTheNativeBumpTheEmptyViewFallbackMakesBackwardRaise()
    {
        var result = ChildProcess.Run("version-fallback", TimeSpan.FromMinutes(2));
        string log = result.Output + result.Error;
        result.ExitCode.Should().Be(0, log);
        var lines = result.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        lines.Should().HaveCount(Enum.GetValues<Kind>().Length, log);
        lines.Should().OnlyContain(l => l.EndsWith("| raised", StringComparison.Ordinal), log);
    }

    /// <summary>The misuses that crashed the process (or read and wrote past a buffer) before the checks existed.</summary>
    private static readonly (string name, Action<List<Parameter>> misuse)[] CrashCandidates = {
        ("gradient of 1,000,000 elements", ps => {
            using var g = torch.randn(1_000_000);
            ps[0].grad = g;
        }),
        ("gradient of 8 elements", ps => {
            using var g = torch.randn(8);
            ps[0].grad = g;
        }),
        ("storage of 4096 elements, fitting gradient", ps => {
            using (torch.no_grad()) using (var s = torch.zeros(4096)) ps[0].set_(s);
            using var g = torch.ones(4096);
            ps[0].grad = g;
        }),
        ("storage of 8 elements, fitting gradient", ps => {
            using (torch.no_grad()) using (var s = torch.zeros(8)) ps[0].set_(s);
            using var g = torch.ones(8);
            ps[0].grad = g;
        }),
    };

    /// <summary>Child process: every crash candidate on the fused path of every kind; one line each, "kind | misuse | exception".</summary>
    [ChildScenario("fused-crash-candidates")]
    public static int RunCrashCandidates(string[] args)
    {
        // "managed": the step reads tensor metadata through TorchSharp's properties, not Rules.NativeTensor.
        if (args.Contains("managed")) Rules.NativeTensor.Available = false;
        foreach (var kind in Enum.GetValues<Kind>()) {
            foreach (var (name, misuse) in CrashCandidates) {
                var (ps, opt) = Warm(kind, fused: true);
                using (opt) {
                    misuse(ps);
                    var ex = Capture(() => opt.step());
                    Console.WriteLine($"{kind} | {name} | {ex?.GetType().Name ?? "none"}");
                }
            }
        }
        return 0;
    }

    [Theory]
    [InlineData("native")]
    [InlineData("managed")]
    public void CrashCandidatesOnTheFusedPathRaiseInsteadOfCrashingAChildProcess(string metadata)
    {
        // In a child process, so that a regression shows as this test failing, not as the whole test run dying; with
        // tensor metadata read natively (the default) and through TorchSharp's properties (the fallback).
        var result = ChildProcess.Run("fused-crash-candidates", TimeSpan.FromMinutes(3), metadata);
        string log = result.Output + result.Error;
        result.TimedOut.Should().BeFalse(log);
        result.Signal.Should().BeNull($"no misuse may crash the process:\n{log}");
        result.ExitCode.Should().Be(0, log);
        var lines = result.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        lines.Should().HaveCount(Enum.GetValues<Kind>().Length * CrashCandidates.Length, log);
        foreach (var line in lines) {
            var parts = line.Split(" | ");
            parts[2].Should().NotBe("none", $"'{line}' must raise");
            if (parts[0] != nameof(Kind.BlackBoxBuiltins) || parts[1].StartsWith("gradient", StringComparison.Ordinal))
                parts[2].Should().Be(nameof(InvalidOperationException), line);
        }
    }

    [Theory]
    [MemberData(nameof(Kinds))]
    public void FusedEqualsEagerWithMissingGradientsAndALayerFrozenAndUnfrozen(Kind kind)
    {
        // As PyTorch's optimizer tests do: no gradient at all at step 2; tensor 1 frozen (grad = null) at steps 3
        // and 4, trained again from step 5.
        var shapes = new[] { new long[] { 40_000 }, new long[] { 3, 5 }, new long[] { 0 }, Array.Empty<long>() };
        var fusedPs = Fixtures.MakeParameters(shapes);
        var eagerPs = Fixtures.Clone(fusedPs);
        using var fused = Make(kind, true, fusedPs);
        using var eager = Make(kind, false, eagerPs);
        for (int t = 0; t < 7; t++) {
            foreach (var ps in new[] { fusedPs, eagerPs }) {
                Fixtures.SetGradients(ps, t);
                if (t == 2) foreach (var p in ps) p.grad = null;
                if (t is 3 or 4) ps[1].grad = null;
            }
            fused.step();
            eager.step();
        }
        Fixtures.MaxRelativeDifference(fusedPs, eagerPs).Should().BeLessThan(1e-10);
        if (kind != Kind.BlackBoxBuiltins) FusedCount(fused).Should().BeGreaterThan(0, "the fused path ran");
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void AGroupWithAZeroLearningRateStaysPutAndAZeroSizeParameterSteps(bool fused)
    {
        var ps = Fixtures.MakeParameters(new[] { new long[] { 64 }, new long[] { 0 }, new long[] { 4, 4 } });
        using var opt = new GenericSecondMomentOptimizer(
            new[] {
                new GenericSecondMomentOptimizer.ParamGroup(ps.Take(2)),
                new GenericSecondMomentOptimizer.ParamGroup(ps.Skip(2), new Rules.SecondMomentOptions { LearningRate = 0 }),
            },
            GenericSecondMomentOptimizer.TorchAdamOptions(lr: 0.01)) { FusedCpuKernel = fused };
        var frozen = Fixtures.Snapshot(ps.Skip(2));
        var moving = Fixtures.Snapshot(ps.Take(1));
        Fixtures.Run(opt, ps, 0, 3);
        TestTensors.ShouldBeBitIdentical(Fixtures.Snapshot(ps.Skip(2)), frozen, "a group whose learning rate is 0 does not move");
        Fixtures.Snapshot(ps.Take(1))[0].Should().NotEqual(moving[0], "the other group trains");
        TestTensors.AllFinite(ps[0]).Should().BeTrue();
        if (fused) opt.FusedTensorSteps.Should().BeGreaterThan(0);
    }
}
