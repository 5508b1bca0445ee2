namespace AdaGraft.Tests.Hardening;

/// <summary>
/// float16 and bfloat16 parameters train under grafting on both paths, and a bfloat16 run follows the same float32
/// run within bfloat16's precision.
/// </summary>
/// <remarks>
/// The model is a small MLP (8 → 16 → 1, tanh) whose parameters are stored in the dtype under test; the forward pass
/// and the loss are computed in float32 from them, so the gradients arrive in the parameters' dtype, as in
/// mixed-precision training. float16 runs use a static loss scale of 1024, as automatic mixed precision does. On the
/// closed-form path the graft takes the norm of M's direction before the learning rate scales it: heavy-ball's
/// momentum, whose elements then reach ~3·10³ (checked), with squares far beyond float16's largest value 65504, so a
/// norm taken as Σu² in float16 would be infinite and the step NaN; the graft must take its norms in float32.
/// </remarks>
public sealed class MixedPrecisionTests : IDisposable
{
    private const int Steps = 200;
    private readonly ITestOutputHelper _output;
    private readonly int _threads;

    /// <summary>
    /// Runs libtorch on one thread for these tests: its OpenMP workers spin-wait, and on a shared 2-core machine
    /// the small matrix products here then ran 3–6× slower on two threads than on one (7–11 s against 21–48 s for
    /// this class, measured back to back). Restored afterwards; xunit runs the test classes one at a time.
    /// </summary>
    public MixedPrecisionTests(ITestOutputHelper output)
    {
        _output = output;
        _threads = torch.get_num_threads();
        torch.set_num_threads(1);
    }

    public void Dispose() => torch.set_num_threads(_threads);
    private const double Float16Max = 65504;

    public static TheoryData<ScalarType, GraftPath> TrainingCases() => new() {
        { ScalarType.Float16, GraftPath.ClosedForm },
        { ScalarType.Float16, GraftPath.BlackBox },
        { ScalarType.BFloat16, GraftPath.ClosedForm },
        { ScalarType.BFloat16, GraftPath.BlackBox },
    };

    [Theory]
    [MemberData(nameof(TrainingCases))]
    public void LowPrecisionParametersTrainUnderPerTensorGrafting(ScalarType dtype, GraftPath path)
    {
        double lossScale = dtype == ScalarType.Float16 ? 1024 : 1;
        var low = Train(dtype, path, lossScale);
        var f32 = Train(ScalarType.Float32, path, lossScale);
        _output.WriteLine($"{dtype} {path}: loss {low.Losses[0]:G4} → {low.FinalLoss:G4} (float32 run: {f32.FinalLoss:G4})" +
                         (path == GraftPath.ClosedForm ? $"; max |m1| of M {low.MaxFirstMoment:G4}" : ""));

        low.Losses.Should().OnlyContain(l => double.IsFinite(l), "the loss must stay finite at every step");
        low.Trajectory[^1].Should().OnlyContain(v => double.IsFinite(v), "the parameters must stay finite");
        low.FinalLoss.Should().BeLessThan(low.Losses[0] / 50, "200 grafted steps must fit the regression");
        low.FinalLoss.Should().BeLessThan(3 * f32.FinalLoss, "the low-precision run must fit about as well as the float32 run");
        if (dtype == ScalarType.Float16 && path == GraftPath.ClosedForm) {
            // The premise of the loss scale: M's step direction (its momentum) has elements whose squares overflow float16.
            (low.MaxFirstMoment * low.MaxFirstMoment).Should().BeGreaterThan(Float16Max);
        }
    }

    /// <summary>
    /// A grafted bfloat16 run against the same run in float32 (same data, same initial values, which are exactly
    /// representable in bfloat16), compared after every one of 200 steps by the relative difference
    /// ‖w_bf16 − w_ref‖ / ‖w_ref‖ over all parameters.
    /// </summary>
    /// <remarks>
    /// <para>Units: bfloat16 keeps 8 significant bits, so storing a value rounds it by up to half of 2^-7, i.e.
    /// 2^-8 relative; below, "k·u" means k × 2^-8.</para>
    /// <para>(1) Against float32 with the parameters rounded to bfloat16 after every step. That run has the one
    /// rounding that bfloat16 storage forces and nothing else (its state, norms and ratios are float32), so the
    /// difference measures what the library's low-precision path adds: state kept in bfloat16, the direction
    /// materialised in bfloat16, the ratio applied in bfloat16. Measured: at most 3.3 u (closed form) and 5.7 u
    /// (black box) over the 200 steps. Bound: 10 u. The same comparison with M's learning rate off by 10% or 20%
    /// (what a ratio ‖ΔM‖/‖ΔD‖ off by that much does) gives 8 u and 16 u, and the test checks that a 25% error
    /// exceeds the bound, so a magnitude error of roughly 15% or more in the low-precision path fails here. A
    /// ratio merely rounded to bfloat16 (≤ 2^-9, what the library does anyway when it multiplies in the
    /// parameter's dtype), and so norms taken in bfloat16 with float32 accumulation, cannot be seen by any
    /// trajectory test; the float16 overflow case of the training test above covers norms taken without it.</para>
    /// <para>(2) Against plain float32: the rounding of (1) accumulates. Where steps are small against the
    /// parameters, rounding drops parts of them systematically, so the difference grows about linearly in the
    /// step t; measured 0.6 u after 1 step, 9 u after 100, 18 u after 200 on both paths (a fifth of the
    /// worst case t/2 u where every rounding goes the same way). Bound: (2 + t/8) u, 1.5× the measurement at
    /// every step and far below the worst case; applying D's raw step, losing the ratio or mixing up the two
    /// children's roles moves the parameters by O(1).</para>
    /// </remarks>
    [Theory]
    [InlineData(GraftPath.ClosedForm)]
    [InlineData(GraftPath.BlackBox)]
    public void BFloat16RunStaysWithinBFloat16ToleranceOfTheFloat32Run(GraftPath path)
    {
        const double u = 1.0 / 256;
        var bf16 = Train(ScalarType.BFloat16, path, 1);
        var f32 = Train(ScalarType.Float32, path, 1);
        var rounded = Train(ScalarType.Float32, path, 1, roundToBFloat16: true);
        var roundedWrongMagnitude = Train(ScalarType.Float32, path, 1, roundToBFloat16: true, magnitudeLrFactor: 1.25);

        double worstToRounded = 0, worstToF32Share = 0, worstWrongMagnitude = 0;
        for (int t = 1; t <= Steps; t++) {
            double toRounded = RelativeDifference(bf16.Trajectory[t - 1], rounded.Trajectory[t - 1]);
            double toF32 = RelativeDifference(bf16.Trajectory[t - 1], f32.Trajectory[t - 1]);
            double bound = (2 + t / 8.0) * u;
            toRounded.Should().BeLessThanOrEqualTo(10 * u, $"step {t}: the bfloat16 run against float32 with bfloat16 parameter storage");
            toF32.Should().BeLessThanOrEqualTo(bound, $"step {t}: the bfloat16 run against the float32 run");
            worstToRounded = Math.Max(worstToRounded, toRounded);
            worstToF32Share = Math.Max(worstToF32Share, toF32 / bound);
            worstWrongMagnitude = Math.Max(worstWrongMagnitude, RelativeDifference(roundedWrongMagnitude.Trajectory[t - 1], rounded.Trajectory[t - 1]));
        }
        double finalToF32 = RelativeDifference(bf16.Trajectory[^1], f32.Trajectory[^1]);
        _output.WriteLine($"{path}: max difference to float32-with-bf16-storage {worstToRounded / u:F2} u (bound 10 u); " +
                         $"to float32 after {Steps} steps {finalToF32 / u:F2} u (bound {2 + Steps / 8.0} u, worst share of the bound {worstToF32Share:P0}); " +
                         $"a 25% magnitude error gives {worstWrongMagnitude / u:F2} u; final loss bf16 {bf16.FinalLoss:G4}, float32 {f32.FinalLoss:G4}");

        worstWrongMagnitude.Should().BeGreaterThan(10 * u, "the bound must be tight enough to catch a 25% error in the step's magnitude");
        bf16.FinalLoss.Should().BeLessThan(bf16.Losses[0] / 50);
    }

    private sealed record Run(List<double[]> Trajectory, List<double> Losses, double FinalLoss, double MaxFirstMoment);

    private static Run Train(ScalarType dtype, GraftPath path, double lossScale, bool roundToBFloat16 = false, double magnitudeLrFactor = 1)
    {
        using var scope = torch.NewDisposeScope();
        using var gen = new Generator(2024);
        var x = torch.randn(new long[] { 64, 8 }, ScalarType.Float32, generator: gen);
        var teacher = torch.randn(new long[] { 8, 1 }, ScalarType.Float32, generator: gen);
        var y = torch.tanh(x.mm(teacher));
        // Initial values rounded to bfloat16 first, so that every dtype starts from exactly the same point.
        var w1 = new Parameter(Representable(torch.randn(new long[] { 8, 16 }, generator: gen).mul_(0.35), dtype));
        var b1 = new Parameter(torch.zeros(16, dtype));
        var w2 = new Parameter(Representable(torch.randn(new long[] { 16, 1 }, generator: gen).mul_(0.25), dtype));
        var b2 = new Parameter(torch.zeros(1, dtype));
        var ps = new[] { w1, b1, w2, b2 };

        // M's learning rate is divided by the loss scale (the step's size is M's); D's cancels out.
        double lr = 0.05 * magnitudeLrFactor / lossScale;
        optim.Optimizer m = path == GraftPath.ClosedForm ? GenericSecondMomentOptimizer.HeavyBall(ps, lr) : optim.SGD(ps, lr, momentum: 0.9);
        optim.Optimizer d = path == GraftPath.ClosedForm ? GenericSecondMomentOptimizer.Adam(ps, 1) : optim.Adam(ps, 1);
        using var graft = new GraftOptimizer(m, d, new GraftOptions { Path = path, OwnsChildren = true });

        var trajectory = new List<double[]>();
        var losses = new List<double>();
        double maxFirstMoment = 0;
        for (int step = 0; step < Steps; step++) {
            using var stepScope = torch.NewDisposeScope();
            graft.zero_grad();
            var loss = Loss(x, y, ps);
            (loss * lossScale).backward();
            losses.Add(loss.item<float>());
            graft.step();
            if (roundToBFloat16) {
                using var noGrad = torch.no_grad();
                foreach (var p in ps) p.copy_(p.to_type(ScalarType.BFloat16));
            }
            if (m is GenericSecondMomentOptimizer rule) {
                foreach (var p in ps) maxFirstMoment = Math.Max(maxFirstMoment, rule.StateOf(p).FirstMoment!.abs().max().to_type(ScalarType.Float64).item<double>());
            }
            trajectory.Add(ps.SelectMany(p => TestTensors.Values(p)).ToArray());
        }
        double final;
        using (torch.no_grad()) final = Loss(x, y, ps).item<float>();
        return new Run(trajectory, losses, final, maxFirstMoment);
    }

    private static Tensor Representable(Tensor t, ScalarType dtype) => t.to_type(ScalarType.BFloat16).to_type(dtype);

    private static Tensor Loss(Tensor x, Tensor y, Parameter[] ps)
    {
        var h = torch.tanh(x.mm(ps[0].to_type(ScalarType.Float32)) + ps[1].to_type(ScalarType.Float32));
        return (h.mm(ps[2].to_type(ScalarType.Float32)) + ps[3].to_type(ScalarType.Float32) - y).square().mean();
    }

    private static double RelativeDifference(double[] a, double[] reference)
    {
        double num = 0, den = 0;
        for (int i = 0; i < a.Length; i++) {
            num += (a[i] - reference[i]) * (a[i] - reference[i]);
            den += reference[i] * reference[i];
        }
        return Math.Sqrt(num / den);
    }
}
