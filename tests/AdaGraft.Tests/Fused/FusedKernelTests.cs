using AdaGraft.Rules;

namespace AdaGraft.Tests.Fused;

/// <summary>
/// The fused CPU kernels (one pass per step, two per graft) against the eager TorchSharp path they replace on CPU:
/// every switch of Algorithm 1, every graft pair, granularity and graft point, sizes around the SIMD width, the
/// work-chunk size and the block size, float32 and float64, and the fallbacks. The eager path is what CUDA runs, so
/// these tests also keep it checked on a machine without a GPU.
/// </summary>
public class FusedKernelTests
{
    /// <summary>Sizes around the SIMD width (8 / 4), the work chunk (32,768) and a multi-chunk tensor with a tail.</summary>
    internal static readonly long[][] Sizes = {
        new long[] { 7 }, new long[] { 3, 5 }, Array.Empty<long>(), new long[] { 0 }, new long[] { 33 },
        new long[] { 4099 }, new long[] { 70_001 },
    };

    private static SecondMomentOptions Base(double lr) => GenericSecondMomentOptimizer.BaseOptions(lr);

    public static readonly Dictionary<string, Func<IEnumerable<Parameter>, GenericSecondMomentOptimizer>> Rules = new() {
        ["paper-sgd"] = p => GenericSecondMomentOptimizer.Sgd(p, 0.05),
        ["paper-heavyball"] = p => GenericSecondMomentOptimizer.HeavyBall(p, 0.02),
        ["paper-adagrad"] = p => GenericSecondMomentOptimizer.AdaGrad(p, 0.1),
        ["paper-adagrad-no-momentum"] = p => GenericSecondMomentOptimizer.AdaGrad(p, 0.1, momentum: 0),
        ["paper-rmsprop"] = p => GenericSecondMomentOptimizer.RmsProp(p, 0.01),
        ["paper-adam"] = p => GenericSecondMomentOptimizer.Adam(p, 0.01),
        ["torch-sgd-nesterov-wd"] = p => GenericSecondMomentOptimizer.TorchSgd(p, 0.05, momentum: 0.9, weight_decay: 0.01, nesterov: true),
        ["torch-sgd-dampening-maximize"] = p => GenericSecondMomentOptimizer.TorchSgd(p, 0.05, momentum: 0.8, dampening: 0.3, maximize: true),
        ["torch-adam"] = p => GenericSecondMomentOptimizer.TorchAdam(p, 0.01),
        ["torch-adam-wd-maximize"] = p => GenericSecondMomentOptimizer.TorchAdam(p, 0.01, weight_decay: 0.05, maximize: true),
        ["torch-amsgrad"] = p => GenericSecondMomentOptimizer.AmsGrad(p, 0.01),
        ["torch-adamw-amsgrad"] = p => GenericSecondMomentOptimizer.TorchAdamW(p, 0.01, weight_decay: 0.1, amsgrad: true),
        ["torch-adagrad-lr-decay-init"] = p => GenericSecondMomentOptimizer.TorchAdagrad(p, 0.1, lr_decay: 0.01, initial_accumulator_value: 0.5),
        ["torch-rmsprop-momentum-wd"] = p => GenericSecondMomentOptimizer.TorchRmsProp(p, 0.01, momentum: 0.9, weight_decay: 0.05),
        ["torch-rmsprop-plain"] = p => GenericSecondMomentOptimizer.TorchRmsProp(p, 0.01),
        ["eps-inside-root-bias"] = p => {
            var o = Base(0.01);
            o.Beta1 = 0.9; o.Beta2 = 0.99; o.Preconditioned = true; o.Epsilon = 1e-3;
            o.EpsilonPlacement = EpsilonPlacement.InsideRoot; o.ScaleFirstMoment = true; o.ScaleSecondMoment = true; o.BiasCorrection = true;
            return new GenericSecondMomentOptimizer(p, o);
        },
        ["amsgrad-pseudo-inverse-nesterov"] = p => {
            var o = Base(0.01);
            o.Beta1 = 0.9; o.Beta2 = 0.99; o.Preconditioned = true; o.AmsGrad = true; o.Nesterov = true;
            return new GenericSecondMomentOptimizer(p, o);
        },
        ["after-preconditioner-pseudo-bias"] = p => {
            var o = Base(0.01);
            o.Beta1 = 0.5; o.Beta2 = 0.9; o.Preconditioned = true; o.ScaleSecondMoment = true; o.BiasCorrection = true;
            o.MomentumPlacement = MomentumPlacement.AfterPreconditioner; o.DecoupledWeightDecay = true; o.WeightDecay = 0.01;
            return new GenericSecondMomentOptimizer(p, o);
        },
    };

    public static TheoryData<string> RuleNames() => new(Rules.Keys);

    private static GenericSecondMomentOptimizer Make(string name, IEnumerable<Parameter> ps, bool fused)
    {
        var opt = Rules[name](ps);
        opt.FusedCpuKernel = fused;
        return opt;
    }

    /// <summary>Sets gradients like <see cref="Fixtures.SetGradients"/> and zeroes tensor 1's on every third step.</summary>
    private static void Gradients(IList<Parameter> ps, int step) => Fixtures.SetGradients(ps, step, zeroAt: (i, s) => i == 1 && s % 3 == 0);

    /// <summary>Steps two optimizers over two copies of the parameters with the same gradients; <paramref name="check"/> runs after each step.</summary>
    private static void Lockstep(IList<Parameter> a, IList<Parameter> b, optim.Optimizer fused, optim.Optimizer eager, int steps, Action<int>? check = null)
    {
        for (int step = 0; step < steps; step++) {
            Gradients(a, step);
            Gradients(b, step);
            fused.step();
            eager.step();
            check?.Invoke(step);
        }
    }

    [Theory]
    [MemberData(nameof(RuleNames))]
    public void FusedStepEqualsEagerStepFloat64(string name)
    {
        var a = Fixtures.MakeParameters(Sizes);
        var b = Fixtures.Clone(a);
        var start = Fixtures.Clone(a);
        using var fused = Make(name, a, fused: true);
        using var eager = Make(name, b, fused: false);
        Lockstep(a, b, fused, eager, 25);
        fused.FusedTensorSteps.Should().Be(25 * Sizes.Length, "every tensor qualifies for the fused kernel");
        eager.FusedTensorSteps.Should().Be(0);
        Fixtures.MaxRelativeDifference(a, start).Should().BeGreaterThan(1e-3, "the parameters must have moved");
        Fixtures.MaxRelativeDifference(a, b).Should().BeLessThanOrEqualTo(1e-12);
        for (int i = 0; i < a.Count; i++) {
            var sa = fused.StateOf(a[i]);
            var sb = eager.StateOf(b[i]);
            sa.Step.Should().Be(sb.Step);
            for (int k = 0; k < sa.SlotNames.Length; k++) {
                (sa.GetSlot(k) is null).Should().Be(sb.GetSlot(k) is null, $"slot {sa.SlotNames[k]} exists in both or neither");
                if (sa.GetSlot(k) is Tensor x && x.numel() > 0)
                    Fixtures.RelativeDifference(x, sb.GetSlot(k)!).Should().BeLessThanOrEqualTo(1e-12, $"slot {sa.SlotNames[k]} of tensor {i}");
            }
        }
    }

    [Theory]
    [InlineData("torch-adam")]
    [InlineData("paper-adagrad")]
    public void RunsOfSmallTensorsAroundLargeAndUnfusedOnesEqualTheEagerStep(string name)
    {
        // A step's work items sweep consecutive small tensors in runs of at least one chunk; here runs enclose a large
        // tensor (chunked in items of its own) and a tensor whose strided gradient the kernel does not take.
        var shapes = Enumerable.Repeat(new long[] { 3000 }, 13).Append(new long[] { 40_000 })
            .Concat(Enumerable.Repeat(new long[] { 2, 1250 }, 14)).Append(new long[] { 5 }).ToArray();
        var a = Fixtures.MakeParameters(shapes);
        var b = Fixtures.Clone(a);
        var start = Fixtures.Clone(a);
        using var fused = Make(name, a, fused: true);
        using var eager = Make(name, b, fused: false);
        const int strided = 20;
        for (int step = 0; step < 8; step++) {
            foreach (var ps in new[] { a, b }) {
                Fixtures.SetGradients(ps, step);
                using var g = ps[strided].grad!;
                using var copy = g.t().contiguous().t(); // the same values, not contiguous
                ps[strided].grad = copy;
            }
            fused.step();
            eager.step();
        }
        fused.FusedTensorSteps.Should().Be(8 * (shapes.Length - 1), "every tensor but the strided one takes the kernel");
        Fixtures.MaxRelativeDifference(a, start).Should().BeGreaterThan(1e-3, "the parameters must have moved");
        Fixtures.MaxRelativeDifference(a, b).Should().BeLessThanOrEqualTo(1e-12);
    }

    [Theory]
    [InlineData("paper-adagrad")]
    [InlineData("paper-adam")]
    [InlineData("torch-adam")]
    [InlineData("torch-rmsprop-momentum-wd")]
    [InlineData("torch-sgd-nesterov-wd")]
    public void FusedStepEqualsEagerStepFloat32(string name)
    {
        var a = Fixtures.MakeParameters(Sizes, ScalarType.Float32);
        var b = Fixtures.Clone(a);
        using var fused = Make(name, a, fused: true);
        using var eager = Make(name, b, fused: false);
        Lockstep(a, b, fused, eager, 20);
        fused.FusedTensorSteps.Should().BeGreaterThan(0);
        Fixtures.MaxRelativeDifference(a, b).Should().BeLessThanOrEqualTo(1e-5);
    }

    /// <summary>The ε = 0 pseudoinverse: coordinate 0 of every tensor never gets a gradient and must not move.</summary>
    [Theory]
    [InlineData("paper-adagrad")]
    [InlineData("paper-adam")]
    [InlineData("amsgrad-pseudo-inverse-nesterov")]
    [InlineData("after-preconditioner-pseudo-bias")]
    public void FusedPseudoInverseLeavesUntouchedCoordinatesAndMakesNoNaN(string name)
    {
        var a = Fixtures.MakeParameters(Sizes);
        var before = Fixtures.Snapshot(a);
        using var fused = Make(name, a, fused: true);
        for (int step = 0; step < 10; step++) {
            Gradients(a, step);
            fused.step();
        }
        var after = Fixtures.Snapshot(a);
        after.SelectMany(x => x).Should().OnlyContain(v => double.IsFinite(v));
        for (int i = 0; i < a.Count; i++) {
            if (a[i].numel() <= 1) continue;
            // Decoupled decay still shrinks the coordinate; without decay it stays exactly where it was.
            if (name == "after-preconditioner-pseudo-bias") Math.Abs(after[i][0]).Should().BeLessThanOrEqualTo(Math.Abs(before[i][0]));
            else after[i][0].Should().Be(before[i][0], $"tensor {i}'s coordinate 0 never had a gradient");
        }
    }

    private static readonly string[] GraftChildren = {
        "paper-sgd", "paper-heavyball", "paper-adagrad", "paper-rmsprop", "paper-adam", "torch-adam",
        "torch-adam-wd-maximize", "after-preconditioner-pseudo-bias",
    };

    public static TheoryData<string, string, GraftGranularity> GraftCases() => EveryPairAndGranularity(GraftChildren);

    /// <summary>Every (magnitude, direction) pair of <paramref name="children"/> with every granularity.</summary>
    internal static TheoryData<string, string, GraftGranularity> EveryPairAndGranularity(string[] children)
    {
        var data = new TheoryData<string, string, GraftGranularity>();
        foreach (var m in children)
            foreach (var d in children)
                foreach (var g in new[] { GraftGranularity.PerTensor, GraftGranularity.Global, GraftGranularity.PerBlock })
                    data.Add(m, d, g);
        return data;
    }

    private static GraftOptimizer Graft(string m, string d, List<Parameter> w, GraftOptions options, bool fused) =>
        new(Make(m, w, fused), Make(d, w, fused), options with { OwnsChildren = true, FusedCpuKernel = fused });

    /// <summary>Fused and eager grafts: the same parameters and the same norms and ratios (per segment and global).</summary>
    internal static void AssertFusedEqualsEager(Func<List<Parameter>, bool, GraftOptimizer> make, long[][] shapes, ScalarType dtype, int steps, double tolerance)
    {
        var a = Fixtures.MakeParameters(shapes, dtype);
        var b = Fixtures.Clone(a);
        var start = Fixtures.Clone(a);
        using var fused = make(a, true);
        using var eager = make(b, false);
        Lockstep(a, b, fused, eager, steps, step => {
            var nf = fused.LastNorms!;
            var ne = eager.LastNorms!;
            for (int i = 0; i < a.Count; i++) {
                foreach (var (x, y, what) in new[] { (nf.Magnitude[i], ne.Magnitude[i], "‖ΔM‖"), (nf.Direction[i], ne.Direction[i], "‖ΔD‖"), (nf.Ratio[i], ne.Ratio[i], "ratio") }) {
                    (x is null).Should().Be(y is null);
                    if (x is null) continue;
                    x.dtype.Should().Be(y!.dtype, $"{what} of tensor {i} keeps the eager dtype");
                    x.shape.Should().Equal(y.shape, $"{what} of tensor {i} has one entry per segment");
                    Fixtures.RelativeDifference(x, y).Should().BeLessThanOrEqualTo(tolerance, $"{what} of tensor {i} at step {step}");
                }
            }
            foreach (var (x, y) in new[] { (nf.GlobalMagnitude, ne.GlobalMagnitude), (nf.GlobalDirection, ne.GlobalDirection), (nf.GlobalRatio, ne.GlobalRatio) }) {
                x.dtype.Should().Be(y.dtype);
                Fixtures.RelativeDifference(x, y).Should().BeLessThanOrEqualTo(tolerance);
            }
        });
        fused.FusedSteps.Should().Be(steps, "every step qualifies for the fused path");
        eager.FusedSteps.Should().Be(0);
        Fixtures.MaxRelativeDifference(a, start).Should().BeGreaterThan(1e-3, "the parameters must have moved");
        Fixtures.MaxRelativeDifference(a, b).Should().BeLessThanOrEqualTo(tolerance);
    }

    [Theory]
    [MemberData(nameof(GraftCases))]
    public void FusedGraftEqualsEagerGraft(string m, string d, GraftGranularity g) =>
        AssertFusedEqualsEager((w, fused) => Graft(m, d, w, new GraftOptions { Granularity = g, BlockSize = 1000 }, fused), Sizes, ScalarType.Float64, steps: 12, tolerance: 1e-10);

    [Theory]
    [InlineData(GraftGranularity.PerTensor)]
    [InlineData(GraftGranularity.Global)]
    [InlineData(GraftGranularity.PerBlock)]
    public void FusedGraftBeforeMomentumEqualsEager(GraftGranularity g) =>
        AssertFusedEqualsEager((w, fused) => Graft("paper-sgd", "paper-adagrad-no-momentum", w,
            new GraftOptions { Granularity = g, BlockSize = 1000, Point = GraftPoint.BeforeMomentum, Momentum = 0.8 }, fused), Sizes, ScalarType.Float64, steps: 12, tolerance: 1e-10);

    [Theory]
    [InlineData(GraftGranularity.PerTensor)]
    [InlineData(GraftGranularity.Global)]
    [InlineData(GraftGranularity.PerBlock)]
    public void FusedGraftEqualsEagerFloat32(GraftGranularity g) =>
        AssertFusedEqualsEager((w, fused) => Graft("paper-heavyball", "torch-adam", w, new GraftOptions { Granularity = g, BlockSize = 1000 }, fused), Sizes, ScalarType.Float32, steps: 10, tolerance: 2e-5);

    /// <summary>
    /// Groups larger than the cache (262,144 elements) get their ΔD streamed past it on the per-tensor and per-block
    /// paths too, and a group ends where the next tensor would take it past 2,097,152 elements: here the first three
    /// tensors make one group, the last two another.
    /// </summary>
    [Theory]
    [InlineData(GraftGranularity.PerTensor)]
    [InlineData(GraftGranularity.PerBlock)]
    public void FusedGraftOfGroupsLargerThanTheCacheEqualsEager(GraftGranularity g) =>
        AssertFusedEqualsEager((w, fused) => Graft("paper-heavyball", "torch-adam", w, new GraftOptions { Granularity = g, BlockSize = 100_000 }, fused),
            new[] { new long[] { 33 }, new long[] { 300_007 }, new long[] { 4099 }, new long[] { 1_900_000 }, new long[] { 5 } }, ScalarType.Float64, steps: 3, tolerance: 1e-10);

    [Fact]
    public void FusedGraftWithEpsilonEqualsEager() =>
        AssertFusedEqualsEager((w, fused) => Graft("paper-adagrad", "paper-adam", w, new GraftOptions { Epsilon = 1e-3 }, fused), Sizes, ScalarType.Float64, steps: 8, tolerance: 1e-10);

    [Fact]
    public void FusedGraftHandlesFloat32AndFloat64TensorsTogether()
    {
        Func<List<Parameter>> make = () => {
            var ps = Fixtures.MakeParameters(new[] { new long[] { 70_001 }, new long[] { 3, 5 } });
            ps.AddRange(Fixtures.MakeParameters(new[] { new long[] { 4099 }, new long[] { 9 } }, ScalarType.Float32, seed: 2));
            return ps;
        };
        var a = make();
        var b = make();
        using var fused = Graft("paper-adagrad", "torch-adam", a, new GraftOptions(), fused: true);
        using var eager = Graft("paper-adagrad", "torch-adam", b, new GraftOptions(), fused: false);
        Lockstep(a, b, fused, eager, 10);
        fused.FusedSteps.Should().Be(10);
        fused.LastNorms!.GlobalRatio.dtype.Should().Be(ScalarType.Float64);
        Fixtures.MaxRelativeDifference(a, b).Should().BeLessThanOrEqualTo(1e-5);
    }

    /// <summary>Large tensors run in parallel chunks; norms are summed in a fixed order, so two runs agree bit for bit.</summary>
    [Fact]
    public void FusedGraftIsDeterministicAcrossRuns()
    {
        double[][] Run(out double ratio)
        {
            var w = Fixtures.MakeParameters(new[] { new long[] { 300_007 }, new long[] { 150_000 } }, ScalarType.Float32);
            using var graft = Graft("paper-adagrad", "torch-adam", w, new GraftOptions { Granularity = GraftGranularity.PerBlock, BlockSize = 50_000 }, fused: true);
            for (int step = 0; step < 5; step++) {
                Gradients(w, step);
                graft.step();
            }
            graft.FusedSteps.Should().Be(5);
            ratio = graft.LastNorms!.GlobalRatio.to_type(ScalarType.Float64).item<double>();
            return Fixtures.Snapshot(w);
        }
        var first = Run(out double r1);
        var second = Run(out double r2);
        r2.Should().Be(r1);
        for (int i = 0; i < first.Length; i++) second[i].Should().Equal(first[i]);
    }

    /// <summary>
    /// End to end in float32: the same MLP trained full-batch by a fused and an eager graft (and a fused and an eager
    /// Adam) follows the same loss curve; only round-off separates them.
    /// </summary>
    [Theory]
    [InlineData("paper-heavyball", "torch-adam")]
    [InlineData("paper-adagrad", "paper-adam")]
    [InlineData("torch-adam", "torch-adam")]
    public void FusedAndEagerTrainAnMlpAlongTheSameCurve(string m, string d)
    {
        using var scope = torch.NewDisposeScope();
        using var gen = new Generator(2024);
        var x = torch.randn(new long[] { 256, 16 }, ScalarType.Float32, generator: gen);
        var y = torch.tanh(x.mm(torch.randn(new long[] { 16, 1 }, ScalarType.Float32, generator: gen)));
        double[] Curve(bool fused)
        {
            torch.manual_seed(17);
            using var model = nn.Sequential(nn.Linear(16, 64), nn.Tanh(), nn.Linear(64, 1));
            var ps = model.parameters().ToList();
            optim.Optimizer opt = m == d
                ? Make(m, ps, fused)
                : Graft(m, d, ps, new GraftOptions(), fused);
            using (opt) {
                var losses = new double[150];
                for (int step = 0; step < losses.Length; step++) {
                    using var stepScope = torch.NewDisposeScope();
                    opt.zero_grad();
                    var loss = nn.functional.mse_loss(model.forward(x), y);
                    loss.backward();
                    losses[step] = loss.item<float>();
                    opt.step();
                }
                if (opt is GraftOptimizer graft) graft.FusedSteps.Should().Be(fused ? losses.Length : 0);
                return losses;
            }
        }
        var fusedCurve = Curve(fused: true);
        var eagerCurve = Curve(fused: false);
        fusedCurve[^1].Should().BeLessThan(0.5 * fusedCurve[0], "the run must train");
        for (int step = 0; step < fusedCurve.Length; step++)
            Math.Abs(fusedCurve[step] - eagerCurve[step]).Should().BeLessThanOrEqualTo(1e-4 * eagerCurve[step], $"step {step}");
    }

    /// <summary>The kernels use at most torch.get_num_threads() threads; one thread and many give the same bits.</summary>
    [Fact]
    public void FusedGraftGivesTheSameBitsOnOneThreadAndOnMany()
    {
        AssertSameBitsOnOneThreadAndOnMany(w => Graft("paper-heavyball", "torch-adam", w, new GraftOptions { Granularity = GraftGranularity.Global }, fused: true));
    }

    /// <summary>Four fused steps of <paramref name="make"/>'s graft on 1 torch thread and on many give the same parameter bits.</summary>
    internal static void AssertSameBitsOnOneThreadAndOnMany(Func<List<Parameter>, GraftOptimizer> make)
    {
        double[][] Run(int threads)
        {
            int before = torch.get_num_threads();
            torch.set_num_threads(threads);
            try {
                var w = Fixtures.MakeParameters(new[] { new long[] { 200_003 }, new long[] { 70_001 } }, ScalarType.Float32);
                using var graft = make(w);
                for (int step = 0; step < 4; step++) {
                    Gradients(w, step);
                    graft.step();
                }
                graft.FusedSteps.Should().Be(4);
                return Fixtures.Snapshot(w);
            } finally {
                torch.set_num_threads(before);
            }
        }
        var one = Run(1);
        var many = Run(Math.Max(2, Environment.ProcessorCount));
        for (int i = 0; i < one.Length; i++) many[i].Should().Equal(one[i]);
    }

    /// <summary>
    /// After a fused step the norms live on the host until read; the tensors made on first access belong to the norms
    /// object (not to a scope the caller had open) and are freed with it at the next step.
    /// </summary>
    [Fact]
    public void FusedNormsAreMadeWhenReadAndOwnedByTheNormsObject()
    {
        var w = Fixtures.MakeParameters(Sizes);
        using var graft = Graft("paper-heavyball", "paper-adam", w, new GraftOptions(), fused: true);
        Gradients(w, 0);
        graft.step();
        var norms = graft.LastNorms!;
        double inScope;
        using (torch.NewDisposeScope()) inScope = norms.Magnitude[6]!.item<double>();
        norms.Magnitude[6]!.item<double>().Should().Be(inScope, "the tensor outlives the caller's scope");
        norms.GlobalRatio.dtype.Should().Be(ScalarType.Float64);
        Gradients(w, 1);
        graft.step();
        var act = () => norms.Magnitude;
        act.Should().Throw<ObjectDisposedException>("the previous step's norms are replaced and freed");
        graft.LastNorms!.Magnitude[6]!.item<double>().Should().NotBe(inScope);
    }

    [Theory]
    [InlineData(GraftGranularity.PerTensor)]
    [InlineData(GraftGranularity.Global)]
    [InlineData(GraftGranularity.PerBlock)]
    public void RecorderOnTheFusedPathEqualsTheEagerPath(GraftGranularity g)
    {
        List<AdaGraft.Diagnostics.StepNormRecord> Record(bool fused)
        {
            var w = Fixtures.MakeParameters(Sizes, ScalarType.Float32);
            using var graft = Graft("paper-heavyball", "paper-adagrad", w, new GraftOptions { Granularity = g, BlockSize = 1000 }, fused);
            using var recorder = new AdaGraft.Diagnostics.StepNormRecorder(graft, new AdaGraft.Diagnostics.RecorderOptions { FlushEvery = 3 });
            for (int step = 0; step < 8; step++) {
                Gradients(w, step);
                if (step == 4) w[2].grad = null;
                graft.step();
            }
            graft.FusedSteps.Should().Be(fused ? 8 : 0);
            return recorder.Records().ToList();
        }
        var f = Record(fused: true);
        var e = Record(fused: false);
        f.Should().HaveCount(e.Count);
        for (int k = 0; k < f.Count; k++) {
            f[k].Step.Should().Be(e[k].Step);
            f[k].Tensor.Should().Be(e[k].Tensor);
            foreach (var (a, b) in new[] { (f[k].MagnitudeNorm, e[k].MagnitudeNorm), (f[k].DirectionNorm, e[k].DirectionNorm), (f[k].Ratio, e[k].Ratio) }) {
                if (double.IsNaN(b)) double.IsNaN(a).Should().BeTrue($"record {k} has no gradient in both");
                else a.Should().BeApproximately(b, 1e-5 * Math.Max(Math.Abs(b), 1e-30), $"record {k} ({f[k].Tensor}, step {f[k].Step})");
            }
        }
        f.Should().HaveCount(8 * (Sizes.Length + 1) - 1, "tensor 2 had no gradient at one step and has no record there");
    }

    [Fact]
    public void NonContiguousParameterTakesTheEagerPath()
    {
        Parameter Strided(int seed)
        {
            using var gen = new Generator((ulong)seed);
            return new Parameter(torch.randn(new long[] { 5, 3 }, ScalarType.Float64, generator: gen).t());
        }
        var a = new List<Parameter> { Strided(3) };
        var b = new List<Parameter> { Strided(3) };
        a[0].is_contiguous().Should().BeFalse("the test needs a strided parameter");
        using var fused = Make("torch-adam", a, fused: true);
        using var eager = Make("torch-adam", b, fused: false);
        Lockstep(a, b, fused, eager, 5);
        fused.FusedTensorSteps.Should().Be(0, "a strided tensor cannot be fused");
        Fixtures.MaxRelativeDifference(a, b).Should().Be(0, "both took the same eager path");
    }

    [Fact]
    public void GraftWithAStridedOrHalfPrecisionTensorStaysEagerForTheWholeStep()
    {
        var w = Fixtures.MakeParameters(new[] { new long[] { 64 } });
        w.Add(new Parameter(torch.randn(16, ScalarType.Float16)));
        using var graft = Graft("paper-heavyball", "paper-adam", w, new GraftOptions(), fused: true);
        for (int step = 0; step < 3; step++) {
            foreach (var p in w) p.grad = torch.randn(p.shape, p.dtype);
            graft.step();
        }
        graft.FusedSteps.Should().Be(0);
        Fixtures.Snapshot(w).SelectMany(x => x).Should().OnlyContain(v => double.IsFinite(v));
    }

    [Fact]
    public void SkippingNonFiniteStepsUsesTheGuardedEagerPath()
    {
        var w = Fixtures.MakeParameters(Fixtures.Shapes);
        using var opt = Make("torch-adam", w, fused: true);
        opt.SkipNonFiniteSteps = true;
        Gradients(w, 0);
        opt.step();
        opt.FusedTensorSteps.Should().Be(0);
    }
}
