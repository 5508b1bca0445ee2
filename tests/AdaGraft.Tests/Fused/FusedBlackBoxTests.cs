namespace AdaGraft.Tests.Fused;

/// <summary>
/// The black-box graft (Algorithm 3) with fused CPU kernels for its measuring, restoring and combining, against the
/// eager black-box path (what CUDA and half precision run): any child optimizer, every granularity, float32 and
/// float64, tensors without a gradient, and the fallbacks.
/// </summary>
public class FusedBlackBoxTests
{
    /// <summary>Black-box children: TorchSharp built-ins (opaque in-place steps) and one of ours stepping on its own.</summary>
    private static optim.Optimizer Child(string name, IEnumerable<Parameter> ps) => name switch {
        "sgd" => optim.SGD(ps, 0.02),
        "sgd-momentum-wd" => optim.SGD(ps, 0.02, momentum: 0.9, weight_decay: 0.01),
        "adam" => optim.Adam(ps, lr: 0.01),
        "adamw-amsgrad" => optim.AdamW(ps, lr: 0.01, weight_decay: 0.05, amsgrad: true),
        "adagrad" => optim.Adagrad(ps, lr: 0.1),
        "rmsprop" => optim.RMSProp(ps, lr: 0.01),
        "ours-heavyball" => GenericSecondMomentOptimizer.HeavyBall(ps, 0.01),
        _ => throw new ArgumentOutOfRangeException(nameof(name), name, null),
    };

    private static readonly string[] Children = { "sgd", "sgd-momentum-wd", "adam", "adamw-amsgrad", "adagrad", "rmsprop", "ours-heavyball" };

    public static TheoryData<string, string, GraftGranularity> Cases() => FusedKernelTests.EveryPairAndGranularity(Children);

    private static GraftOptimizer Graft(string m, string d, List<Parameter> w, GraftOptions options, bool fused) =>
        new(Child(m, w), Child(d, w), options with { Path = GraftPath.BlackBox, OwnsChildren = true, FusedCpuKernel = fused });

    [Theory]
    [MemberData(nameof(Cases))]
    public void FusedBlackBoxEqualsEagerBlackBox(string m, string d, GraftGranularity g) =>
        FusedKernelTests.AssertFusedEqualsEager((w, fused) => Graft(m, d, w, new GraftOptions { Granularity = g, BlockSize = 1000 }, fused),
            FusedKernelTests.Sizes, ScalarType.Float64, steps: 8, tolerance: 1e-10);

    [Theory]
    [InlineData(GraftGranularity.PerTensor)]
    [InlineData(GraftGranularity.Global)]
    [InlineData(GraftGranularity.PerBlock)]
    public void FusedBlackBoxEqualsEagerFloat32(GraftGranularity g) =>
        FusedKernelTests.AssertFusedEqualsEager((w, fused) => Graft("sgd-momentum-wd", "adam", w, new GraftOptions { Granularity = g, BlockSize = 1000 }, fused),
            FusedKernelTests.Sizes, ScalarType.Float32, steps: 8, tolerance: 2e-5);

    [Fact]
    public void FusedBlackBoxWithEpsilonEqualsEager() =>
        FusedKernelTests.AssertFusedEqualsEager((w, fused) => Graft("adagrad", "adam", w, new GraftOptions { Epsilon = 1e-3 }, fused),
            FusedKernelTests.Sizes, ScalarType.Float64, steps: 6, tolerance: 1e-10);

    /// <summary>
    /// A tensor without a gradient is skipped by both children and by the graft (it does not move and has no norms);
    /// float32 and float64 tensors mix.
    /// </summary>
    [Theory]
    [InlineData(GraftGranularity.PerTensor)]
    [InlineData(GraftGranularity.Global)]
    public void TensorsWithoutAGradientAreSkippedAndDtypesMix(GraftGranularity g)
    {
        List<Parameter> Make()
        {
            var ps = Fixtures.MakeParameters(new[] { new long[] { 70_001 }, new long[] { 3, 5 } });
            ps.AddRange(Fixtures.MakeParameters(new[] { new long[] { 4099 }, new long[] { 9 } }, ScalarType.Float32, seed: 2));
            return ps;
        }
        var a = Make();
        var b = Make();
        using var fused = Graft("sgd-momentum-wd", "adam", a, new GraftOptions { Granularity = g }, fused: true);
        using var eager = Graft("sgd-momentum-wd", "adam", b, new GraftOptions { Granularity = g }, fused: false);
        for (int step = 0; step < 6; step++) {
            Fixtures.SetGradients(a, step);
            Fixtures.SetGradients(b, step);
            if (step is 2 or 3) {
                a[2].grad = null;
                b[2].grad = null;
            }
            var before = Fixtures.Snapshot(a);
            fused.step();
            eager.step();
            if (step is 2 or 3) {
                Fixtures.Snapshot(a)[2].Should().Equal(before[2], "a tensor without a gradient does not move");
                fused.LastNorms!.Magnitude[2].Should().BeNull();
                eager.LastNorms!.Magnitude[2].Should().BeNull();
            }
            Fixtures.RelativeDifference(fused.LastNorms!.GlobalRatio, eager.LastNorms!.GlobalRatio).Should().BeLessThanOrEqualTo(1e-5);
        }
        fused.FusedSteps.Should().Be(6);
        fused.LastNorms!.GlobalRatio.dtype.Should().Be(ScalarType.Float64);
        Fixtures.MaxRelativeDifference(a, b).Should().BeLessThanOrEqualTo(1e-5);
    }

    /// <summary>Norms are summed in a fixed order: one thread and many give the same bits.</summary>
    [Fact]
    public void FusedBlackBoxGivesTheSameBitsOnOneThreadAndOnMany() =>
        FusedKernelTests.AssertSameBitsOnOneThreadAndOnMany(w => Graft("sgd-momentum-wd", "adam", w, new GraftOptions { Granularity = GraftGranularity.Global }, fused: true));

    [Fact]
    public void AStridedOrHalfPrecisionTensorKeepsTheWholeStepEager()
    {
        // Two SGD children: the built-in Adam's ε (1e-8) is 0 in float16, so its step can be 0/0 there.
        using var gen = new Generator(5);
        foreach (var odd in new Func<Parameter>[] {
            () => new Parameter(torch.randn(16, ScalarType.Float16, generator: gen)),
            () => new Parameter(torch.randn(new long[] { 5, 3 }, ScalarType.Float64, generator: gen).t()),
        }) {
            var w = Fixtures.MakeParameters(new[] { new long[] { 64 } });
            w.Add(odd());
            var before = Fixtures.Snapshot(w);
            using var graft = Graft("sgd", "sgd-momentum-wd", w, new GraftOptions(), fused: true);
            for (int step = 0; step < 3; step++) {
                foreach (var p in w) p.grad = torch.randn(p.shape, p.dtype, generator: gen);
                graft.step();
            }
            graft.FusedSteps.Should().Be(0);
            var after = Fixtures.Snapshot(w);
            after.SelectMany(x => x).Should().OnlyContain(v => double.IsFinite(v));
            after[1].Should().NotEqual(before[1], "the odd tensor is stepped (eagerly)");
        }
    }

    /// <summary>
    /// A child may give a parameter new storage during its step (<c>set_</c>); the fused path must follow it (it re-reads
    /// every address after each child's step) and compute what the eager path computes.
    /// </summary>
    [Fact]
    public void AChildThatGivesParametersNewStorageIsFollowed()
    {
        var a = Fixtures.MakeParameters(FusedKernelTests.Sizes);
        var b = Fixtures.Clone(a);
        using var fused = new GraftOptimizer(new StorageSwappingSgd(a, 0.02, strided: false), optim.Adam(a, lr: 0.01),
            new GraftOptions { Path = GraftPath.BlackBox, OwnsChildren = true });
        using var eager = new GraftOptimizer(new StorageSwappingSgd(b, 0.02, strided: false), optim.Adam(b, lr: 0.01),
            new GraftOptions { Path = GraftPath.BlackBox, OwnsChildren = true, FusedCpuKernel = false });
        Fixtures.RunAll(0, 5, (a, fused), (b, eager));
        fused.FusedSteps.Should().Be(5);
        Fixtures.MaxRelativeDifference(a, b).Should().BeLessThanOrEqualTo(1e-10);
    }

    [Fact]
    public void AChildThatLeavesAParameterStridedGetsAClearErrorAndTheParametersBack()
    {
        var w = Fixtures.MakeParameters(new[] { new long[] { 3, 5 }, new long[] { 70_001 } });
        using var graft = new GraftOptimizer(new StorageSwappingSgd(w, 0.02, strided: true), optim.Adam(w, lr: 0.01),
            new GraftOptions { Path = GraftPath.BlackBox, OwnsChildren = true });
        Fixtures.SetGradients(w, 0);
        var before = Fixtures.Snapshot(w);
        var act = () => graft.step();
        act.Should().Throw<InvalidOperationException>().WithMessage("*magnitude optimizer*strided*in place*FusedCpuKernel = false*");
        var after = Fixtures.Snapshot(w);
        for (int i = 0; i < w.Count; i++) after[i].Should().Equal(before[i], $"parameter {i} is restored");
    }
}

/// <summary>A third-party-style optimizer: SGD whose step gives each parameter new storage (optionally strided).</summary>
internal sealed class StorageSwappingSgd(List<Parameter> ps, double lr, bool strided) : ForeignOptimizer(ps, optim.SGD(ps, lr))
{
    public override Tensor step(Func<Tensor>? closure = null)
    {
        Inner.step();
        using var _ = torch.no_grad();
        foreach (var p in Parameters) {
            if (p.dim() == 0) continue;
            using var fresh = strided ? p.unsqueeze(-1).expand(p.shape.Append(2L).ToArray()).clone().select(-1, 0) : p.clone();
            p.set_(fresh);
        }
        return null!;
    }
}
