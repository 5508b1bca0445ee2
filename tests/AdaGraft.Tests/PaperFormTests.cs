using AdaGraft.Rules;
using static AdaGraft.Tests.Support.TestTensors;

namespace AdaGraft.Tests;

/// <summary>
/// The paper's forms of Algorithm 1 (momentum 0.9, ε = 0) against values derived by hand from the update rule,
/// computed here in plain double arithmetic.
/// </summary>
public class PaperFormTests
{
    private const double Beta1 = 0.9;
    private const double Beta2 = 0.999;

    // Step 1 and step 2 gradients. Coordinate 3 is zero in both steps, coordinate 5 is zero in step 1 only.
    private static readonly double[] W0 = { 1.0, -2.0, 0.5, 3.0, 0.75, -1.25 };
    private static readonly double[] G1 = { 0.3, -1.7, 2.9, 0.0, 1e-3, 0.0 };
    private static readonly double[] G2 = { -0.5, 0.4, 1.1, 0.0, 2.0, -0.6 };

    // Gradients whose magnitudes are powers of two: g/√(g²) is exactly ±1, so the first step is exact.
    private static readonly double[] PowerOfTwoG = { 0.5, -2.0, 0.25, 0.0, -4.0, 1.0 };

    private static double[] Sign(double[] g) => g.Select(x => (double)Math.Sign(x)).ToArray();

    private static double[] FirstStep(GenericSecondMomentOptimizer opt, Parameter p, double[] g)
    {
        SetGrad(p, g);
        opt.step();
        return Values(p);
    }

    private static double[] Delta(double[] after, double[] before) => after.Zip(before, (a, b) => a - b).ToArray();

    private static double[] Expected(double[] w, Func<int, double> delta) => w.Select((x, i) => x + delta(i)).ToArray();

    /// <summary>The parameter after step 1 (gradient G1) and after step 2 (G2) of the optimizer <paramref name="make"/> builds over W0.</summary>
    private static (double[] W1, double[] W2) TwoSteps(Func<Parameter[], GenericSecondMomentOptimizer> make)
    {
        var p = Vector(W0);
        using var opt = make(new[] { p });
        var w1 = FirstStep(opt, p, G1);
        return (w1, FirstStep(opt, p, G2));
    }

    /// <summary>
    /// Step 2 from <paramref name="w1"/> without (1−β) scaling or bias correction: m1 = β1·g1 + g2,
    /// m2 = <paramref name="beta2"/>·g1² + g2², Δ = −η·m1/√m2 (0 where m2 = 0); AdaGrad is <paramref name="beta2"/> = 1.
    /// </summary>
    private static double[] UnscaledSecondStep(double[] w1, double lr, double beta2) => Expected(w1, i => {
        double m1 = Beta1 * G1[i] + G2[i];
        double m2 = beta2 * G1[i] * G1[i] + G2[i] * G2[i];
        return m2 == 0 ? 0 : -lr * m1 / Math.Sqrt(m2);
    });

    // ---------------- First steps: −η·sign(g) for AdaGrad, RMSprop and Adam ----------------

    public static readonly TheoryData<string> SignFirstStepForms = new() { "adagrad", "rmsprop", "adam" };

    private static GenericSecondMomentOptimizer PaperForm(string form, IEnumerable<Parameter> ps, double lr) => form switch {
        "adagrad" => GenericSecondMomentOptimizer.AdaGrad(ps, lr),
        "rmsprop" => GenericSecondMomentOptimizer.RmsProp(ps, lr, momentum: Beta1, beta2: Beta2),
        "adam" => GenericSecondMomentOptimizer.Adam(ps, lr, beta1: Beta1, beta2: Beta2),
        _ => throw new ArgumentOutOfRangeException(nameof(form), form, "unknown form"),
    };

    [Theory]
    [MemberData(nameof(SignFirstStepForms))]
    public void FirstStepIsMinusLrTimesSignOfGradient(string form)
    {
        const double lr = 0.1;
        var p = Vector(W0);
        using var opt = PaperForm(form, new[] { p }, lr);
        var after = FirstStep(opt, p, G1);
        var sign = Sign(G1);
        // Each coordinate moves by exactly η against its gradient's sign, whatever the gradient's magnitude
        // (rounding: a few ulps of |w| ≤ 3). Coordinates with g = 0 do not move at all.
        ShouldBeClose(Delta(after, W0), sign.Select(s => -lr * s).ToArray(), 1e-14, $"{form} first step");
        after[3].Should().Be(W0[3]);
        after[5].Should().Be(W0[5]);
    }

    [Theory]
    [InlineData("adagrad")]
    [InlineData("rmsprop")]
    public void FirstStepIsExactlyMinusLrTimesSignForPowerOfTwoGradients(string form)
    {
        // η, w and g are chosen so that every intermediate (g², 1/√g², w − η) is exactly representable.
        const double lr = 0.25;
        var p = Vector(W0);
        using var opt = PaperForm(form, new[] { p }, lr);
        var after = FirstStep(opt, p, PowerOfTwoG);
        var expected = Expected(W0, i => -lr * Math.Sign(PowerOfTwoG[i]));
        ShouldBeBitIdentical(new[] { after }, new[] { expected }, $"({form} first step)");
    }

    // ---------------- Second steps, by hand ----------------

    [Fact]
    public void AdaGradSecondStepMatchesHandDerivation()
    {
        const double lr = 0.1;
        var (w1, w2) = TwoSteps(ps => GenericSecondMomentOptimizer.AdaGrad(ps, lr));

        // m1 = 0.9·g1 + g2, m2 = g1² + g2², Δ = −η·m1/√m2 (0 where m2 = 0).
        ShouldBeClose(w2, UnscaledSecondStep(w1, lr, beta2: 1), 1e-12, "AdaGrad second step");
        w2[3].Should().Be(W0[3], "a coordinate whose gradient was always 0 does not move");
        // Coordinate 5: g1 = 0, so after step 2 m1 = g2 and m2 = g2², a full −η·sign(g2) step.
        (w2[5] - w1[5]).Should().BeApproximately(-lr * Math.Sign(G2[5]), 1e-14);
    }

    [Fact]
    public void RmsPropPaperFormSecondStepMatchesHandDerivation()
    {
        const double lr = 0.1;
        var (w1, w2) = TwoSteps(ps => GenericSecondMomentOptimizer.RmsProp(ps, lr, momentum: Beta1, beta2: Beta2));

        // No (1−β) scaling: m1 = 0.9·g1 + g2, m2 = β2·g1² + g2².
        ShouldBeClose(w2, UnscaledSecondStep(w1, lr, Beta2), 1e-12, "RMSprop (paper form) second step");
        w2[3].Should().Be(W0[3]);
    }

    [Fact]
    public void AdamPaperFormSecondStepMatchesHandDerivation()
    {
        const double lr = 0.1;
        var (w1, w2) = TwoSteps(ps => GenericSecondMomentOptimizer.Adam(ps, lr, beta1: Beta1, beta2: Beta2));

        // m1 = β1·(1−β1)·g1 + (1−β1)·g2, m2 = β2·(1−β2)·g1² + (1−β2)·g2²;
        // bias-corrected m̂1 = m1/(1−β1²), m̂2 = m2/(1−β2²); Δ = −η·m̂1/√m̂2.
        var expected = Expected(w1, i => {
            double m1 = Beta1 * (1 - Beta1) * G1[i] + (1 - Beta1) * G2[i];
            double m2 = Beta2 * (1 - Beta2) * G1[i] * G1[i] + (1 - Beta2) * G2[i] * G2[i];
            double m1Hat = m1 / (1 - Beta1 * Beta1);
            double m2Hat = m2 / (1 - Beta2 * Beta2);
            return m2Hat == 0 ? 0 : -lr * m1Hat / Math.Sqrt(m2Hat);
        });
        ShouldBeClose(w2, expected, 1e-12, "Adam (paper form) second step");
        w2[3].Should().Be(W0[3]);
    }

    [Fact]
    public void HeavyBallTwoStepsMatchHandDerivation()
    {
        const double lr = 0.1;
        var p = Vector(W0);
        using var opt = GenericSecondMomentOptimizer.HeavyBall(new[] { p }, lr);
        opt.Defaults.Beta1.Should().Be(Beta1, "the paper's heavy ball uses momentum 0.9 by default");
        var w1 = FirstStep(opt, p, G1);
        ShouldBeClose(w1, Expected(W0, i => -lr * G1[i]), 1e-14, "heavy ball step 1 (m1 = g1)");
        var w2 = FirstStep(opt, p, G2);
        ShouldBeClose(w2, Expected(w1, i => -lr * (Beta1 * G1[i] + G2[i])), 1e-12, "heavy ball step 2 (m1 = 0.9·g1 + g2)");
    }

    [Fact]
    public void SgdTwoStepsMatchHandDerivation()
    {
        const double lr = 0.1;
        var (w1, w2) = TwoSteps(ps => GenericSecondMomentOptimizer.Sgd(ps, lr));
        ShouldBeClose(w1, Expected(W0, i => -lr * G1[i]), 1e-14, "SGD step 1");
        ShouldBeClose(w2, Expected(w1, i => -lr * G2[i]), 1e-14, "SGD step 2 (no memory of g1)");
    }

    // ---------------- ε = 0: the pseudoinverse ----------------

    public static readonly TheoryData<string, double> PseudoInverseForms = new() {
        { "adagrad", 0.9 }, { "adagrad", 0.0 },
        { "rmsprop", 0.9 }, { "rmsprop", 0.0 },
        { "adam", 0.9 }, { "adam", 0.0 },
    };

    [Theory]
    [MemberData(nameof(PseudoInverseForms))]
    public void ZeroGradientCoordinatesNeverMoveAndNothingBecomesNonFinite(string form, double momentum)
    {
        const double lr = 0.05;
        var ps = Fixtures.MakeParameters(Fixtures.Shapes);
        var initial = Fixtures.Snapshot(ps);
        using var opt = form switch {
            "adagrad" => GenericSecondMomentOptimizer.AdaGrad(ps, lr, momentum: momentum),
            "rmsprop" => GenericSecondMomentOptimizer.RmsProp(ps, lr, momentum: momentum),
            "adam" => GenericSecondMomentOptimizer.Adam(ps, lr, beta1: momentum),
            _ => throw new ArgumentOutOfRangeException(nameof(form)),
        };
        opt.Defaults.Epsilon.Should().Be(0, "the paper's forms use the pseudoinverse");

        // Tensor 1 always has a zero gradient; tensor 2 has a zero gradient for its first 10 steps.
        static bool ZeroAt(int tensor, int step) => tensor == 1 || (tensor == 2 && step < 10);
        for (int step = 0; step < 50; step++) {
            Fixtures.SetGradients(ps, step, zeroAt: ZeroAt);
            opt.step();

            var now = Fixtures.Snapshot(ps);
            for (int i = 0; i < ps.Count; i++) {
                now[i].Should().OnlyContain(x => double.IsFinite(x), $"parameter {i} after step {step + 1}");
                if (ps[i].numel() > 1) now[i][0].Should().Be(initial[i][0], $"coordinate 0 of tensor {i} has always had a zero gradient (step {step + 1})");
                var state = opt.StateOf(ps[i]);
                foreach (var slot in new[] { state.FirstMoment, state.SecondMoment }) {
                    if (slot is not null) AllFinite(slot).Should().BeTrue($"state of tensor {i} after step {step + 1}");
                }
            }
            now[1].Should().Equal(initial[1], "a tensor whose gradient is always zero never moves");
            if (step < 10) now[2].Should().Equal(initial[2], "a tensor with a zero gradient so far has not moved");
        }
        // The other coordinates did move (the test would notice a frozen optimizer).
        Fixtures.Snapshot(ps)[2].Skip(1).Should().NotEqual(initial[2].Skip(1));
        Fixtures.Snapshot(ps)[0].Skip(1).Should().NotEqual(initial[0].Skip(1));
    }

    // ---------------- ε > 0: inside or outside the root ----------------

    [Theory]
    [InlineData(EpsilonPlacement.InsideRoot)]
    [InlineData(EpsilonPlacement.OutsideRoot)]
    public void EpsilonPlacementGivesTheFirstStepOfItsFormula(EpsilonPlacement placement)
    {
        const double lr = 0.1, eps = 0.01;
        double[] g = { 0.1, -0.05, 1.0, 0.0, 3.0, -0.2 };
        var p = Vector(W0);
        var o = GenericSecondMomentOptimizer.BaseOptions(lr);
        o.Preconditioned = true;
        o.Beta2 = Beta2;
        o.Epsilon = eps;
        o.EpsilonPlacement = placement;
        using var opt = new GenericSecondMomentOptimizer(new[] { p }, o);
        var after = FirstStep(opt, p, g);

        // m2 = β2·0 + g² = g² after one step (no (1−β2) scaling), no momentum.
        double[] inside = g.Select(x => -lr * x / Math.Sqrt(x * x + eps)).ToArray();
        double[] outside = g.Select(x => -lr * x / (Math.Abs(x) + eps)).ToArray();
        inside.Zip(outside, (a, b) => Math.Abs(a - b)).Max().Should().BeGreaterThan(1e-3, "the two placements must be distinguishable here");

        var expected = placement == EpsilonPlacement.InsideRoot ? inside : outside;
        ShouldBeClose(Delta(after, W0), expected, 1e-14, $"first step with ε {placement}");
    }

    // ---------------- Adam is RMSprop with a learning-rate schedule ----------------

    [Fact]
    public void PaperAdamEqualsPaperRmsPropWithBiasCorrectionAsLearningRateSchedule()
    {
        const double lr = 0.01;
        var a = Fixtures.MakeParameters(Fixtures.Shapes);
        var b = Fixtures.Clone(a);
        using var adam = GenericSecondMomentOptimizer.Adam(a, lr, beta1: Beta1, beta2: Beta2);
        using var rms = GenericSecondMomentOptimizer.RmsProp(b, lr, momentum: Beta1, beta2: Beta2);

        double worst = 0;
        for (int t = 1; t <= 100; t++) {
            // Adam's moments are (1−β1)·m1 and (1−β2)·m2 of the unscaled ones, and its step is multiplied by
            // √(1−β2^t)/(1−β1^t): the same as RMSprop with η_t = η·(1−β1)·√(1−β2^t) / ((1−β1^t)·√(1−β2)).
            double lrT = lr * (1 - Beta1) * Math.Sqrt(1 - Math.Pow(Beta2, t)) / ((1 - Math.Pow(Beta1, t)) * Math.Sqrt(1 - Beta2));
            foreach (var g in rms.ParamGroups) g.LearningRate = lrT;
            Fixtures.StepAll(t, (a, adam), (b, rms));
            worst = Math.Max(worst, Fixtures.MaxRelativeDifference(b, a));
        }
        worst.Should().BeLessThanOrEqualTo(1e-10);
        Fixtures.MaxRelativeDifference(a, Fixtures.MakeParameters(Fixtures.Shapes)).Should().BeGreaterThan(1e-3, "the parameters must have moved");
    }
}
