using AdaGraft.Rules;

namespace AdaGraft.Tests.Preconditioners;

/// <summary>
/// Shampoo's state: a poisoned factor keeps its previous root and is counted; a checkpoint (factors, roots, grafting
/// state, momentum, failure count) continues bit-identically; bad input raises before anything changes; CPU = CUDA.
/// </summary>
public sealed class ShampooStateTests
{
    private static byte[] Save(ShampooOptimizer opt) => StateBytes.Save(opt.save_state_dict);

    private static void Load(ShampooOptimizer opt, byte[] bytes) => StateBytes.Load(bytes, opt.load_state_dict);

    /// <summary>Steps <paramref name="from"/> to <paramref name="to"/> (exclusive) of every run, each with its own copy of the gradient stream.</summary>
    private static void Steps(int from, int to, params (IList<Parameter> w, optim.Optimizer opt)[] runs)
    {
        for (int step = from; step < to; step++) {
            foreach (var (w, opt) in runs) {
                Fixtures.SetGradients(w, step);
                opt.step();
            }
        }
    }

    private static void Poison(ShampooState state, int block, int dim)
    {
        using var factor = state.Factor(block, dim)!;
        using var element = factor[1, 1];
        element.fill_(double.NaN);
    }

    [Theory]
    [InlineData(ScalarType.Float64)]
    [InlineData(ScalarType.Float32)]
    public void APoisonedFactorKeepsItsPreviousRootAndIsCounted(ScalarType dtype)
    {
        var w = Fixtures.MakeParameters(new[] { new long[] { 3, 5 }, new long[] { 4 } }, dtype);
        using var opt = ShampooOptimizer.Create(w, lr: 0.1);
        Steps(0, 3, (w, opt));
        var state = opt.StateOf(w[0]);
        Poison(state, 0, 0);
        double[] lRoot, rRoot;
        using (var l = state.Root(0, 0)!) lRoot = TestTensors.Values(l);
        using (var r = state.Root(0, 1)!) rRoot = TestTensors.Values(r);
        Steps(3, 5, (w, opt));
        opt.RootFailures.Should().Be(2, "L's root failed on both root steps; R's did not");
        state.RootFailures.Should().Be(2);
        using (var l = state.Root(0, 0)!) TestTensors.ShouldBeBitIdentical(new[] { TestTensors.Values(l) }, new[] { lRoot }, "L̃ was kept");
        using (var r = state.Root(0, 1)!) TestTensors.Values(r).Should().NotEqual(rRoot, "R̃ was recomputed");
        foreach (var p in w) TestTensors.Values(p).Should().OnlyContain(x => double.IsFinite(x));
    }

    [Fact]
    public void CheckpointContinuesBitIdentically()
    {
        var w = Fixtures.MakeParameters(new[] { new long[] { 7 }, new long[] { 3, 5 }, new long[] { 5, 7 }, new long[] { 2, 3, 4 } });
        static ShampooOptimizer Make(IList<Parameter> ps, double lr) => ShampooOptimizer.Create(ps, lr: lr, beta1: 0.9, beta2: 0.99,
            momentum: 0.9, weight_decay: 0.01, max_preconditioner_dim: 3, precondition_frequency: 2, grafting: ShampooGrafting.Adam, grafting_epsilon: 1e-8);
        using var original = Make(w, 0.05);
        Steps(0, 5, (w, original));
        Poison(original.StateOf(w[1]), 0, 0);
        Steps(5, 7, (w, original));
        original.RootFailures.Should().Be(1, "the step-7 root of the poisoned factor failed");
        var bytes = Save(original);

        var restoredW = Fixtures.Clone(w);
        var coldW = Fixtures.Clone(w);
        using var restored = Make(restoredW, 0.5);
        using var cold = Make(coldW, 0.05);
        Load(restored, bytes);
        Save(restored).Should().Equal(bytes, "the loaded optimizer saves exactly what it loaded");
        restored.RootFailures.Should().Be(1);
        restored.Groups.Single().Options.LearningRate.Should().Be(0.05, "the learning rate comes from the file");
        var s = restored.StateOf(restoredW[2]);
        s.BlockCount.Should().Be(6);
        using (var f = s.Factor(5, 1)!) TestTensors.Values(f).Should().Equal(TestTensors.Values(original.StateOf(w[2]).Factor(5, 1)!));

        Steps(7, 12, (w, original), (restoredW, restored), (coldW, cold));
        TestTensors.ShouldBeBitIdentical(Fixtures.Snapshot(restoredW), Fixtures.Snapshot(w), "after loading");
        Save(restored).Should().Equal(Save(original), "the states stayed bit-identical");
        Fixtures.MaxRelativeDifference(coldW, w).Should().BeGreaterThan(1e-6, "without the saved state the steps differ");
    }

    public static readonly TheoryData<string, Func<IList<Parameter>, ShampooOptimizer>> BadArguments = new() {
        { "lr", ps => ShampooOptimizer.Create(ps, lr: -1) },
        { "beta1", ps => ShampooOptimizer.Create(ps, beta1: 1) },
        { "beta2", ps => ShampooOptimizer.Create(ps, beta2: 1.5) },
        { "beta2", ps => ShampooOptimizer.Create(ps, beta2: double.NaN) },
        { "epsilon", ps => ShampooOptimizer.Create(ps, epsilon: -1e-12) },
        { "momentum", ps => ShampooOptimizer.Create(ps, momentum: 1) },
        { "nesterov", ps => ShampooOptimizer.Create(ps, nesterov: true) },
        { "weight_decay", ps => ShampooOptimizer.Create(ps, weight_decay: -0.1) },
        { "max_preconditioner_dim", ps => ShampooOptimizer.Create(ps, max_preconditioner_dim: 0) },
        { "precondition_frequency", ps => ShampooOptimizer.Create(ps, precondition_frequency: 0) },
        { "start_preconditioning_step", ps => ShampooOptimizer.Create(ps, start_preconditioning_step: 0) },
        { "start_preconditioning_step", ps => new ShampooOptimizer(ps, With(o => o.StartPreconditioningStep = 2.5)) },
        { "exponent_override", ps => ShampooOptimizer.Create(ps, exponent_override: -2) },
        { "exponent_override", ps => ShampooOptimizer.Create(ps, exponent_override: double.PositiveInfinity) },
        { "skip_preconditioning_dim_size_gt", ps => ShampooOptimizer.Create(ps, skip_preconditioning_dim_size_gt: -1) },
        { "grafting", ps => ShampooOptimizer.Create(ps, grafting: (ShampooGrafting)99) },
        { "grafting_epsilon", ps => ShampooOptimizer.Create(ps, grafting_epsilon: -1) },
        { "grafting_beta2", ps => ShampooOptimizer.Create(ps, grafting_beta2: 1) },
    };

    private static ShampooOptions With(Action<ShampooOptions> change)
    {
        var o = ShampooOptimizer.DefaultOptions();
        change(o);
        return o;
    }

    [Theory]
    [MemberData(nameof(BadArguments))]
    public void BadArgumentsRaiseNamingTheArgument(string name, Func<IList<Parameter>, ShampooOptimizer> make)
    {
        var w = Fixtures.MakeParameters(new[] { new long[] { 3, 4 } });
        var act = () => make(w);
        act.Should().Throw<ArgumentException>().Which.ParamName.Should().Be(name);
    }

    public static readonly TheoryData<string> Misuses = new() { "frequency", "exponent", "beta2", "block-size", "sparse" };

    /// <summary>A step after a misuse raises, and parameters and state (factors, roots, counters) are as they were.</summary>
    [Theory]
    [MemberData(nameof(Misuses))]
    public void MisuseRaisesBeforeAnyChange(string misuse)
    {
        var w = Fixtures.MakeParameters(new[] { new long[] { 3, 5 }, new long[] { 6 } });
        using var opt = ShampooOptimizer.Create(w, lr: 0.1, momentum: 0.5);
        Steps(0, 3, (w, opt));
        Fixtures.SetGradients(w, 3);
        var options = opt.Groups.Single().Options;
        switch (misuse) {
            case "frequency": options.PreconditionFrequency = 0; break;
            case "exponent": options.ExponentOverride = -1; break;
            case "beta2": options.Beta2 = 2; break;
            case "block-size": options.MaxPreconditionerDim = 2; break;
            case "sparse":
                using (var dense = w[1].grad!.clone()) w[1].grad = dense.to_sparse();
                break;
        }
        var before = Fixtures.Snapshot(w);
        var state = Save(opt);
        var act = () => opt.step();
        if (misuse == "sparse") act.Should().Throw<NotSupportedException>().WithMessage("*sparse*");
        else if (misuse == "block-size") act.Should().Throw<InvalidOperationException>().WithMessage("*max_preconditioner_dim*");
        else act.Should().Throw<ArgumentException>();
        TestTensors.ShouldBeBitIdentical(Fixtures.Snapshot(w), before, "parameters unchanged");
        Save(opt).Should().Equal(state, "state unchanged");
    }

    /// <summary>
    /// CPU = CUDA, float32 and float64. Roots start at step 10, once every factor has full rank: a root of a
    /// rank-deficient factor with ε = 1e-12 scales its null space by (rounding noise + ε)^(−1/p), which differs between
    /// any two eigensolvers (CPU float32 against CPU float64 differ by 10 % there, and the first GPU run found 7.8 %
    /// between CPU and CUDA); from step 10, float32 and float64 agree to 6e-7 on the CPU.
    /// </summary>
    [Theory]
    [InlineData(ScalarType.Float32, 1e-5)]
    [InlineData(ScalarType.Float64, 1e-9)]
    public void CpuEqualsCuda(ScalarType dtype, double tolerance)
    {
        Assert.SkipUnless(torch.cuda.is_available(), "CUDA is not available on this machine.");
        long[][] shapes = { new long[] { 7 }, new long[] { 3, 5 }, new long[] { 40, 70 }, new long[] { 6, 4, 3, 3 } };
        var cpu = Fixtures.MakeParameters(shapes, dtype);
        var gpu = Fixtures.CudaCopies(cpu);
        static ShampooOptimizer Make(IList<Parameter> ps) => ShampooOptimizer.Create(ps, lr: 0.01, beta1: 0.9, momentum: 0.5,
            weight_decay: 0.01, max_preconditioner_dim: 32, precondition_frequency: 5, start_preconditioning_step: 10,
            grafting: ShampooGrafting.Adam, grafting_epsilon: 1e-8);
        using var oc = Make(cpu);
        using var og = Make(gpu);
        // Fixtures.SetGradients draws on the CPU and copies to the parameter's device: both runs get the same stream.
        Steps(0, 20, (cpu, oc), (gpu, og));
        Fixtures.MaxRelativeDifference(gpu.Select(p => new Parameter(p.detach().cpu())).ToList(), cpu).Should().BeLessThanOrEqualTo(tolerance);
        Fixtures.MaxRelativeDifference(cpu, Fixtures.MakeParameters(shapes, dtype)).Should().BeGreaterThan(1e-3);
        og.RootFailures.Should().Be(oc.RootFailures);

        // to(device) moves factors and roots there and back unchanged.
        var saved = Save(oc);
        oc.to(torch.CUDA);
        using (var factor = oc.StateOf(cpu[2]).Factor(0, 0)!) factor.device_type.Should().Be(DeviceType.CUDA);
        oc.to(torch.CPU);
        Save(oc).Should().Equal(saved);

        // A CPU checkpoint loaded into an optimizer over CUDA copies continues there as the CUDA run does.
        var moved = Fixtures.CudaCopies(cpu);
        using var om = Make(moved);
        Load(om, saved);
        Steps(20, 22, (gpu, og), (moved, om));
        Fixtures.MaxRelativeDifference(moved.Select(p => new Parameter(p.detach().cpu())).ToList(), gpu.Select(p => new Parameter(p.detach().cpu())).ToList()).Should().BeLessThanOrEqualTo(1e-4);
    }
}
