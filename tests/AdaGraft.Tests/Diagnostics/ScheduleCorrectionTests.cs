using AdaGraft.Schedules;

namespace AdaGraft.Tests.Diagnostics;

/// <summary>Corrections multiply exactly onto existing schedulers; Adam's bias correction is a warmup.</summary>
public class ScheduleCorrectionTests
{
    [Fact]
    public void CorrectionOnTopOfStepLrIsExactlyTheProductAtEveryStep()
    {
        var a = Fixtures.MakeParameters(Fixtures.Shapes);
        var b = Fixtures.Clone(a);
        using var corrected = GenericSecondMomentOptimizer.HeavyBall(a, 0.1);
        using var plain = GenericSecondMomentOptimizer.HeavyBall(b, 0.1);
        var correction = new LinearCorrection(0.5, 0.01);
        var scheduler = new CorrectedScheduler(corrected, correction, optim.lr_scheduler.StepLR(corrected, step_size: 3, gamma: 0.5));
        var reference = optim.lr_scheduler.StepLR(plain, step_size: 3, gamma: 0.5);
        for (int t = 1; t <= 20; t++) {
            double inner = plain.ParamGroups.Single().LearningRate;
            corrected.ParamGroups.Single().LearningRate.Should().Be(inner * correction.Factor(t), $"step {t} uses StepLR(t)·c(t)");
            Fixtures.StepAll(t, (a, corrected), (b, plain));
            scheduler.step();
            reference.step();
        }
        plain.ParamGroups.Single().LearningRate.Should().BeLessThan(0.1 * 0.5 * 0.5, "StepLR decayed, so the product was really tested");
    }

    [Fact]
    public void PerGroupCorrectionsApplyToTheirGroups()
    {
        var ps = Fixtures.MakeParameters(Fixtures.Shapes);
        using var opt = new GenericSecondMomentOptimizer(
            new[] { new GenericSecondMomentOptimizer.ParamGroup(ps.Take(2)), new GenericSecondMomentOptimizer.ParamGroup(ps.Skip(2)) },
            GenericSecondMomentOptimizer.BaseOptions(0.2));
        var scheduler = new CorrectedScheduler(opt, new ILearningRateCorrection[] { new LinearCorrection(1, 1), new PowerCorrection(2, -0.5) });
        scheduler.step();
        scheduler.step();
        var rates = opt.ParamGroups.Select(g => g.LearningRate).ToArray();
        rates[0].Should().Be(0.2 * (1 + 3));
        rates[1].Should().Be(0.2 * 2 * Math.Pow(3, -0.5));
        FluentActions.Invoking(() => new CorrectedScheduler(opt, new ILearningRateCorrection[] { new LinearCorrection(1, 0) }))
            .Should().Throw<ArgumentException>().WithMessage("*one per group*");
    }

    [Fact]
    public void BiasCorrectionWarmupMakesScaledRmsPropEqualAdamOver1000Steps()
    {
        var a = Fixtures.MakeParameters(Fixtures.Shapes);
        var b = Fixtures.Clone(a);
        using var adam = GenericSecondMomentOptimizer.Adam(a, 0.01, beta1: 0.9, beta2: 0.999);
        var o = GenericSecondMomentOptimizer.BaseOptions(0.01);
        o.Preconditioned = true;
        o.Beta1 = 0.9;
        o.Beta2 = 0.999;
        o.ScaleFirstMoment = true;
        o.ScaleSecondMoment = true;
        o.BiasCorrection = false;
        using var rmsprop = new GenericSecondMomentOptimizer(b, o);
        var warmup = new CorrectedScheduler(rmsprop, new AdamBiasCorrectionWarmup(0.9, 0.999));
        for (int t = 0; t < 1000; t++) {
            Fixtures.StepAll(t, (a, adam), (b, rmsprop));
            warmup.step();
        }
        Fixtures.MaxRelativeDifference(b, a).Should().BeLessThanOrEqualTo(1e-10);
    }

    [Fact]
    public void WarmupCurveIsAdamsBiasCorrectionFactor()
    {
        AdamBiasCorrectionWarmup.Curve(1, 0.9, 0.999).Should().BeApproximately(Math.Sqrt(0.001) / 0.1, 1e-15);
        AdamBiasCorrectionWarmup.Curve(100_000, 0.9, 0.999).Should().BeApproximately(1, 1e-12);
        var curve = Enumerable.Range(1, 3000).Select(t => AdamBiasCorrectionWarmup.Curve(t, 0.9, 0.999)).ToArray();
        // It dips for the first ~12 steps (1−β1^t catches up), then rises monotonically to 1 like a warmup over ~1/(1−β2) steps.
        int min = Array.IndexOf(curve, curve.Min());
        min.Should().BeInRange(5, 20);
        curve.Skip(min).Zip(curve.Skip(min + 1)).Should().OnlyContain(p => p.Second >= p.First);
        curve[999].Should().BeInRange(0.7, 0.9);
    }

    [Fact]
    public void TabulatedCorrectionInterpolatesRecordsAndHoldsItsLastValue()
    {
        var records = new List<AdaGraft.Diagnostics.StepNormRecord> {
            new(2, "__global__", 1, 1, 1.0),
            new(4, "__global__", 1, 1, 3.0),
        };
        var c = TabulatedCorrection.FromRecords(records);
        c.Factor(1).Should().Be(1.0);
        c.Factor(3).Should().Be(2.0);
        c.Factor(4).Should().Be(3.0);
        c.Factor(100).Should().Be(3.0);
    }
}
