using AdaGraft.Rules;

namespace AdaGraft.Tests.Preconditioners;

/// <summary>
/// Muon's step against an independent implementation written here with plain tensor operations; each size rule's
/// factor against its formula; the fallback AdamW group against TorchSharp's built-in AdamW.
/// </summary>
public class MuonRuleTests
{
    // ---------------- Size rules ----------------

    public static TheoryData<MuonSizeRule, long[], double> SizeCases() => new() {
        // tall 64 × 16, wide 16 × 64, convolution kernel 8 × 3 × 3 × 3 (8 × 27)
        { MuonSizeRule.Original, new long[] { 64, 16 }, Math.Sqrt(64.0 / 16) },
        { MuonSizeRule.Original, new long[] { 16, 64 }, 1.0 },
        { MuonSizeRule.Original, new long[] { 8, 3, 3, 3 }, 1.0 },
        { MuonSizeRule.MatchAdamWRms, new long[] { 64, 16 }, 0.2 * Math.Sqrt(64) },
        { MuonSizeRule.MatchAdamWRms, new long[] { 16, 64 }, 0.2 * Math.Sqrt(64) },
        { MuonSizeRule.MatchAdamWRms, new long[] { 8, 3, 3, 3 }, 0.2 * Math.Sqrt(27) },
        { MuonSizeRule.None, new long[] { 64, 16 }, 1.0 },
        { MuonSizeRule.None, new long[] { 16, 64 }, 1.0 },
        { MuonSizeRule.None, new long[] { 8, 3, 3, 3 }, 1.0 },
    };

    /// <summary>
    /// The factor from the formula, and the optimizer applies it: one step under the rule is exactly the factor times
    /// the step of the same optimizer under <see cref="MuonSizeRule.None"/> (no weight decay, so the step is η·s·O).
    /// </summary>
    [Theory]
    [MemberData(nameof(SizeCases))]
    public void SizeRuleScalesTheStepByItsFormula(MuonSizeRule rule, long[] shape, double expected)
    {
        var (rows, cols) = MuonRule.MatrixShape(shape);
        MuonRule.SizeFactor(rule, rows, cols).Should().Be(expected);

        using var scope = torch.NewDisposeScope();
        var start = MuonTestSupport.Gaussian(shape, 5);
        var grad = MuonTestSupport.Gaussian(shape, 6);
        Tensor StepOf(MuonSizeRule r)
        {
            var p = new Parameter(start.clone());
            using var opt = MuonOptimizer.Create(new[] { p }, lr: 0.01, weight_decay: 0, adjust_lr_fn: r, ns_precision: NewtonSchulzPrecision.ParameterDtype);
            p.grad = grad.clone();
            opt.step();
            return p.detach() - start;
        }
        var bare = StepOf(MuonSizeRule.None);
        var sized = StepOf(rule);
        bare.abs().max().item<double>().Should().BeGreaterThan(1e-4, "the step moved");
        ((sized - bare * expected).abs().max() / bare.abs().max()).item<double>().Should().BeLessThan(1e-12, "round-off of w + Δ − w only");
    }

    // ---------------- One step, hand-checked ----------------

    /// <summary>Muon written out with plain operations, independently of the library: momentum, Nesterov, Newton–Schulz, size, decay.</summary>
    private static Tensor ReferenceStep(Tensor w, Tensor g, Tensor buffer, double lr, double mu, bool nesterov, double wd, double scale)
    {
        buffer.mul_(mu).add_(g * (1 - mu));
        var u = nesterov ? g * (1 - mu) + buffer * mu : buffer.clone();
        long rows = w.shape[0], cols = w.numel() / rows;
        var x = u.reshape(rows, cols);
        bool tall = rows > cols;
        if (tall) x = x.t();
        x = x / torch.sqrt((x * x).sum());
        for (int i = 0; i < 5; i++) {
            var a = torch.matmul(x, x.t());
            x = 3.4445 * x - 4.7750 * torch.matmul(a, x) + 2.0315 * torch.matmul(a, torch.matmul(a, x));
        }
        if (tall) x = x.t();
        return w * (1 - lr * wd) - lr * scale * x.reshape(w.shape);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void ThreeStepsEqualAPlainImplementation(bool nesterov)
    {
        using var scope = torch.NewDisposeScope();
        var shapes = new[] { new long[] { 6, 4 }, new long[] { 4, 6 }, new long[] { 3, 2, 2, 2 } };
        var ps = shapes.Select((s, i) => new Parameter(MuonTestSupport.Gaussian(s, 30 + i))).ToList();
        var expected = ps.Select(p => p.detach().clone()).ToList();
        var buffers = ps.Select(p => torch.zeros_like(p)).ToList();
        const double lr = 0.05, mu = 0.9, wd = 0.1;
        using var opt = MuonOptimizer.Create(ps, lr: lr, weight_decay: wd, momentum: mu, nesterov: nesterov, ns_precision: NewtonSchulzPrecision.ParameterDtype);
        for (int step = 0; step < 3; step++) {
            for (int i = 0; i < ps.Count; i++) {
                var g = MuonTestSupport.Gaussian(shapes[i], 100 * step + i);
                ps[i].grad = g;
                double scale = Math.Sqrt(Math.Max(1.0, (double)shapes[i][0] / (ps[i].numel() / shapes[i][0])));
                expected[i] = ReferenceStep(expected[i], g, buffers[i], lr, mu, nesterov, wd, scale);
            }
            opt.step();
        }
        for (int i = 0; i < ps.Count; i++) {
            Fixtures.RelativeDifference(ps[i].detach(), expected[i]).Should().BeLessThan(1e-12, $"tensor {i}");
            Fixtures.RelativeDifference(opt.StateOf(ps[i]).MomentumBuffer!, buffers[i]).Should().BeLessThan(1e-14, $"momentum of tensor {i}");
        }
        Fixtures.RelativeDifference(ps[0].detach(), MuonTestSupport.Gaussian(shapes[0], 30)).Should().BeGreaterThan(1e-3, "the parameters moved");
    }

    /// <summary>
    /// The float32 (default) and bfloat16 iterations on float64 parameters: the same steps as a float64 iteration, to
    /// the accuracy of the iteration's dtype (bfloat16 is meant for CUDA; it runs, slowly, on the CPU too).
    /// </summary>
    [Theory]
    [InlineData(NewtonSchulzPrecision.Fp32, 1e-12, 1e-4)]
    [InlineData(NewtonSchulzPrecision.Bf16, 1e-5, 5e-2)]
    public void LowPrecisionIterationAgreesToItsAccuracy(NewtonSchulzPrecision precision, double lo, double hi)
    {
        using var scope = torch.NewDisposeScope();
        var low = new Parameter(MuonTestSupport.Gaussian(new long[] { 12, 8 }, 40));
        var full = new Parameter(low.detach().clone());
        using var oLow = MuonOptimizer.Create(new[] { low }, lr: 0.05, ns_precision: precision);
        using var oFull = MuonOptimizer.Create(new[] { full }, lr: 0.05, ns_precision: NewtonSchulzPrecision.ParameterDtype);
        var start = low.detach().clone();
        for (int step = 0; step < 3; step++) {
            low.grad = MuonTestSupport.Gaussian(new long[] { 12, 8 }, 41 + step);
            full.grad = low.grad.clone();
            oLow.step();
            oFull.step();
        }
        low.dtype.Should().Be(ScalarType.Float64);
        Fixtures.RelativeDifference(low.detach() - start, full.detach() - start).Should().BeInRange(lo, hi, "rounding in the iteration's dtype, and only that");
    }

    // ---------------- The fallback AdamW ----------------

    /// <summary>
    /// In an optimizer that also has a Muon group, the AdamW group's tensors (a vector, a scalar, and a matrix left to
    /// AdamW) follow TorchSharp's <c>torch.optim.AdamW</c> over those tensors alone, to 1e-10 over 20 float64 steps.
    /// </summary>
    [Theory]
    [InlineData(1e-8)]
    [InlineData(1e-3)]
    public void AdamWGroupEqualsTorchSharpAdamW(double eps)
    {
        var shapes = new[] { new long[] { 7 }, new long[] { 3, 5 }, new long[] { 2, 3, 4 }, Array.Empty<long>(), new long[] { 4, 3 } };
        var w = Fixtures.MakeParameters(shapes);
        var reference = Fixtures.Clone(new[] { w[0], w[3], w[4] });
        var names = new[] { "bias", "hidden.weight", "conv.weight", "gain", "head.weight" };
        var groups = MuonOptimizer.SplitByRank(names.Zip(w), name => name.StartsWith("head", StringComparison.Ordinal), adamw_lr: 0.01);
        groups.Should().HaveCount(2);
        groups[1].Parameters.Should().HaveCount(3, "the vector, the scalar and the head matrix go to AdamW");
        using var muon = MuonOptimizer.Create(groups, lr: 0.02, adamw_betas: (0.8, 0.95), adamw_eps: eps, adamw_weight_decay: 0.1);
        using var adamw = torch.optim.AdamW(reference, lr: 0.01, beta1: 0.8, beta2: 0.95, eps: eps, weight_decay: 0.1);
        var start = Fixtures.Clone(reference);
        for (int step = 0; step < 20; step++) {
            Fixtures.SetGradients(w, step);
            var grads = new[] { w[0].grad!, w[3].grad!, w[4].grad! };
            for (int i = 0; i < reference.Count; i++) reference[i].grad = grads[i].clone();
            muon.step();
            adamw.step();
        }
        Fixtures.MaxRelativeDifference(new[] { w[0], w[3], w[4] }, reference).Should().BeLessThanOrEqualTo(1e-10);
        Fixtures.MaxRelativeDifference(reference, start).Should().BeGreaterThan(1e-3, "the parameters moved");
    }
}
