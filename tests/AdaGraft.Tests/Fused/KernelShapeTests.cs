using AdaGraft.Rules;

namespace AdaGraft.Tests.Fused;

/// <summary>
/// The fused kernels are compiled once per kernel shape (<see cref="FusedShapes"/>): the switches a shape fixes are
/// folded away, the others read from the plan. These tests hold every shape to the open one (every switch read from
/// the plan) bit for bit, over every combination of switches, and check that the presets get a specialised shape.
/// </summary>
public class KernelShapeTests
{
    /// <summary>Whole vectors and a tail, in both dtypes.</summary>
    private const int Elements = 203;

    /// <summary>A plan with every switch of <paramref name="flags"/>, constants that differ from each other, and slots for what it needs.</summary>
    private static FusedPlan Plan(PlanFlags flags, int seed) => new() {
        Maximize = flags.HasFlag(PlanFlags.Maximize),
        Coupled = flags.HasFlag(PlanFlags.Coupled),
        HasM1 = flags.HasFlag(PlanFlags.HasM1),
        Nesterov = flags.HasFlag(PlanFlags.Nesterov),
        Preconditioned = flags.HasFlag(PlanFlags.Preconditioned),
        Beta2IsOne = flags.HasFlag(PlanFlags.Beta2IsOne),
        AmsGrad = flags.HasFlag(PlanFlags.AmsGrad),
        PseudoInverse = flags.HasFlag(PlanFlags.PseudoInverse),
        EpsInside = flags.HasFlag(PlanFlags.EpsInside),
        AfterPreconditioner = flags.HasFlag(PlanFlags.After),
        HasDecay = flags.HasFlag(PlanFlags.HasDecay),
        WeightDecay = 0.013 + 1e-4 * seed,
        Beta1 = 0.87,
        C1 = 0.13,
        NesterovGrad = 0.31,
        Beta2 = 0.991,
        C2 = 0.009,
        EpsTerm = 1e-3,
        Scale = -0.07,
        Decay = -0.002,
        MomentumFold = 0.41,
    };

    /// <summary>The state a plan works on, made from one seed so that two copies are equal.</summary>
    private sealed class Slots : IDisposable
    {
        public readonly Tensor M1, M2, VMax;

        public Slots(ScalarType dtype, int seed)
        {
            var gen = new torch.Generator((ulong)seed);
            M1 = torch.randn(Elements, dtype: dtype, generator: gen);
            // Some zeros, so the pseudoinverse's zero rule runs too.
            M2 = torch.rand(Elements, dtype: dtype, generator: gen) * (torch.rand(Elements, dtype: dtype, generator: gen) > 0.2);
            VMax = torch.rand(Elements, dtype: dtype, generator: gen);
        }

        public void Point(ref FusedPlan p)
        {
            p.M1 = p.HasM1 ? FusedCpu.Pointer(M1) : IntPtr.Zero;
            p.M2 = p.Preconditioned ? FusedCpu.Pointer(M2) : IntPtr.Zero;
            p.VMax = p.AmsGrad ? FusedCpu.Pointer(VMax) : IntPtr.Zero;
        }

        public IEnumerable<Tensor> All => new[] { M1, M2, VMax };

        public void Dispose()
        {
            foreach (var t in All) t.Dispose();
        }
    }

    private static byte[] Bytes(Tensor t) => t.bytes.ToArray();

    private static void SameBits(IEnumerable<Tensor> a, IEnumerable<Tensor> b, string what)
    {
        foreach (var (x, y) in a.Zip(b)) Bytes(x).Should().Equal(Bytes(y), what);
    }

    /// <summary>One step of <paramref name="flags"/> through the shape the kernel picks, and through the open shape.</summary>
    private static void StepBothWays(PlanFlags flags, ScalarType dtype)
    {
        var gen = new torch.Generator(7);
        using var w0 = torch.randn(Elements, dtype: dtype, generator: gen);
        using var g = torch.randn(Elements, dtype: dtype, generator: gen);
        using var w1 = w0.clone();
        using var w2 = w0.clone();
        using var picked = new Slots(dtype, 11);
        using var open = new Slots(dtype, 11);
        var p1 = Plan(flags, 1);
        var p2 = p1;
        picked.Point(ref p1);
        open.Point(ref p2);
        IntPtr pg = FusedCpu.Pointer(g);
        if (dtype == ScalarType.Float32) {
            FusedCpu.Step<float>(p1, FusedCpu.Pointer(w1), pg, 0, Elements);
            FusedCpu.Step<float, FusedShapes.Open>(p2, FusedCpu.Pointer(w2), pg, 0, Elements);
        } else {
            FusedCpu.Step<double>(p1, FusedCpu.Pointer(w1), pg, 0, Elements);
            FusedCpu.Step<double, FusedShapes.Open>(p2, FusedCpu.Pointer(w2), pg, 0, Elements);
        }
        SameBits(picked.All.Append(w1), open.All.Append(w2), $"flags {flags}, {dtype}, shape {FusedShapes.Of(flags)}");
        // The step did something: a kernel that wrote nothing would pass the comparison above.
        Bytes(w1).Should().NotEqual(Bytes(w0), $"flags {flags}");
    }

    [Theory]
    [InlineData(ScalarType.Float32)]
    [InlineData(ScalarType.Float64)]
    public void EveryCombinationOfSwitchesStepsBitForBitAsTheOpenShape(ScalarType dtype)
    {
        for (int f = 0; f <= (int)PlanFlags.All; f++) StepBothWays((PlanFlags)f, dtype);
    }

    [Fact]
    public void EverySpecialisedShapeIsPickedBySomeCombination()
    {
        var picked = Enumerable.Range(0, (int)PlanFlags.All + 1).Select(f => FusedShapes.Of((PlanFlags)f)).ToHashSet();
        picked.Should().BeEquivalentTo(Enumerable.Range(0, 7), "each of the six specialised shapes and the open one is reachable");
    }

    /// <summary>A graft's propose of two plans through the shapes the kernel picks, and through open shapes.</summary>
    private static void ProposeBothWays(PlanFlags magnitude, PlanFlags direction, ScalarType dtype)
    {
        var gen = new torch.Generator(5);
        using var w = torch.randn(Elements, dtype: dtype, generator: gen);
        using var g = torch.randn(Elements, dtype: dtype, generator: gen);
        using var o1 = torch.zeros(Elements, dtype: dtype);
        using var o2 = torch.zeros(Elements, dtype: dtype);
        using var m1 = new Slots(dtype, 3);
        using var m2 = new Slots(dtype, 3);
        using var d1 = new Slots(dtype, 4);
        using var d2 = new Slots(dtype, 4);
        FusedPlan pm1 = Plan(magnitude, 1), pm2 = pm1, pd1 = Plan(direction, 2), pd2 = pd1;
        m1.Point(ref pm1);
        m2.Point(ref pm2);
        d1.Point(ref pd1);
        d2.Point(ref pd2);
        IntPtr pw = FusedCpu.Pointer(w), pg = FusedCpu.Pointer(g);
        (double, double) a, b;
        var args = new FusedCpu.ProposeArgs(pm2, pd2, pw, pg, FusedCpu.Pointer(o2), 0, Elements, false);
        if (dtype == ScalarType.Float32) {
            a = FusedCpu.Propose<float>(pm1, pd1, pw, pg, FusedCpu.Pointer(o1), 0, Elements);
            b = FusedCpu.Propose<float, FusedShapes.Open, FusedShapes.Open>(args);
        } else {
            a = FusedCpu.Propose<double>(pm1, pd1, pw, pg, FusedCpu.Pointer(o1), 0, Elements);
            b = FusedCpu.Propose<double, FusedShapes.Open, FusedShapes.Open>(args);
        }
        string what = $"magnitude {magnitude}, direction {direction}, {dtype}";
        BitConverter.DoubleToInt64Bits(a.Item1).Should().Be(BitConverter.DoubleToInt64Bits(b.Item1), what);
        BitConverter.DoubleToInt64Bits(a.Item2).Should().Be(BitConverter.DoubleToInt64Bits(b.Item2), what);
        SameBits(m1.All.Concat(d1.All).Append(o1), m2.All.Concat(d2.All).Append(o2), what);
        a.Item2.Should().NotBe(0, what);
    }

    /// <summary>One combination per shape, each also with the switches shapes leave open (weight decay, β2 = 1) on.</summary>
    public static TheoryData<int, int> ShapePairs()
    {
        var open = new[] { PlanFlags.None, PlanFlags.HasDecay | PlanFlags.Coupled | PlanFlags.Beta2IsOne };
        var each = new[] {
            PlanFlags.HasM1, PlanFlags.None, PlanFlags.HasM1 | PlanFlags.Preconditioned,
            PlanFlags.HasM1 | PlanFlags.Preconditioned | PlanFlags.PseudoInverse, PlanFlags.Preconditioned,
            PlanFlags.Preconditioned | PlanFlags.PseudoInverse, PlanFlags.HasM1 | PlanFlags.Preconditioned | PlanFlags.AmsGrad | PlanFlags.EpsInside,
        }.SelectMany(f => open.Select(o => f | o)).ToArray();
        var data = new TheoryData<int, int>();
        foreach (var m in each) foreach (var d in each) data.Add((int)m, (int)d);
        return data;
    }

    [Theory]
    [MemberData(nameof(ShapePairs))]
    public void ProposeOfEveryPairOfShapesEqualsTheOpenShapesBitForBit(int magnitude, int direction)
    {
        ProposeBothWays((PlanFlags)magnitude, (PlanFlags)direction, ScalarType.Float32);
        ProposeBothWays((PlanFlags)magnitude, (PlanFlags)direction, ScalarType.Float64);
    }

    [Fact]
    public void ProposeOfRandomPairsOfSwitchesEqualsTheOpenShapesBitForBit()
    {
        var random = new Random(12);
        for (int i = 0; i < 300; i++) {
            var m = (PlanFlags)random.Next((int)PlanFlags.All + 1);
            var d = (PlanFlags)random.Next((int)PlanFlags.All + 1);
            ProposeBothWays(m, d, i % 2 == 0 ? ScalarType.Float32 : ScalarType.Float64);
        }
    }

    /// <summary>The plans of common presets take a specialised shape (the speed of the fused path depends on it).</summary>
    public static TheoryData<string, int> Presets() => new() {
        { "paper-sgd", 2 }, { "paper-heavyball", 1 }, { "paper-adagrad", 4 }, { "paper-adagrad-no-momentum", 6 },
        { "paper-rmsprop", 4 }, { "paper-adam", 4 }, { "torch-adam", 3 }, { "torch-adagrad-lr-decay-init", 5 },
        { "torch-rmsprop-plain", 5 }, { "torch-adam-wd-maximize", 0 }, { "torch-amsgrad", 0 },
    };

    [Theory]
    [MemberData(nameof(Presets))]
    public void PresetsTakeTheirShape(string rule, int shape)
    {
        using var p = new Parameter(torch.randn(10));
        using var opt = FusedKernelTests.Rules[rule](new[] { p });
        p.grad = torch.randn(10);
        opt.step();
        var plan = ((IFusedPlanSource)opt).Plan(p);
        FusedShapes.Of(FusedShapes.Flags(plan)).Should().Be(shape, FusedShapes.Flags(plan).ToString());
    }
}
