using AdaGraft.Diagnostics;
using AdaGraft.Rules;
using AdaGraft.Schedules;

namespace AdaGraft.Tests.Diagnostics;

/// <summary>
/// Schedule discovery in one call: the recorder's correction series c(t), a fit of it, and the fit's own correction
/// for <see cref="CorrectedScheduler"/>, for each of the three families.
/// </summary>
public class ScheduleDiscoveryTests
{
    public static TheoryData<ScheduleFamily> Families => new() { ScheduleFamily.Linear, ScheduleFamily.PowerLaw, ScheduleFamily.Exponential };

    /// <summary>A known correction of each family: (c, a, b).</summary>
    private static (Func<double, double> c, double a, double b) Known(ScheduleFamily family) => family switch {
        ScheduleFamily.Linear => (t => 0.4 + 0.003 * t, 0.4, 0.003),
        ScheduleFamily.PowerLaw => (t => 2.0 * Math.Pow(t, -0.27), 2.0, -0.27),
        _ => (t => 1.5 * Math.Exp(-0.004 * t), 1.5, -0.004),
    };

    private static ScheduleFitResult FitAs(ScheduleFamily family, double[] t, double[] y) => family switch {
        ScheduleFamily.Linear => ScheduleFitter.Linear(t, y),
        ScheduleFamily.PowerLaw => ScheduleFitter.PowerLaw(t, y),
        _ => ScheduleFitter.Exponential(t, y),
    };

    [Theory]
    [MemberData(nameof(Families))]
    public void EachFitKindRoundTripsToItsCorrectionAndTheCorrectedRateIsInnerTimesC(ScheduleFamily family)
    {
        var (c, a, b) = Known(family);
        var t = Enumerable.Range(1, 600).Select(i => (double)i).ToArray();
        var fit = FitAs(family, t, t.Select(c).ToArray());
        fit.Family.Should().Be(family);
        fit.A.Should().BeApproximately(a, 1e-9);
        fit.B.Should().BeApproximately(b, 1e-9);
        fit.Points.Should().Be(600);
        ScheduleFitter.Best(t, t.Select(c).ToArray()).Family.Should().Be(family, "exact data of one family fits it best");

        var correction = fit.ToCorrection();
        correction.Should().BeOfType(family switch {
            ScheduleFamily.Linear => typeof(LinearCorrection),
            ScheduleFamily.PowerLaw => typeof(PowerCorrection),
            _ => typeof(ExponentialCorrection),
        });

        var a1 = Fixtures.MakeParameters(Fixtures.Shapes);
        var b1 = Fixtures.Clone(a1);
        using var corrected = GenericSecondMomentOptimizer.TorchAdam(a1, 0.01);
        using var plain = GenericSecondMomentOptimizer.TorchAdam(b1, 0.01);
        var scheduler = new CorrectedScheduler(corrected, correction, optim.lr_scheduler.StepLR(corrected, step_size: 40, gamma: 0.5));
        var reference = optim.lr_scheduler.StepLR(plain, step_size: 40, gamma: 0.5);
        for (int step = 1; step <= 200; step++) {
            double inner = plain.ParamGroups.Single().LearningRate;
            corrected.ParamGroups.Single().LearningRate.Should().Be(inner * fit.Evaluate(step), $"step {step} uses inner(t)·c(t)");
            Math.Abs(fit.Evaluate(step) / c(step) - 1).Should().BeLessThan(1e-9, "the fitted c(t) is the known one");
            Fixtures.StepAll(step, (a1, corrected), (b1, plain));
            scheduler.step();
            reference.step();
        }
        plain.ParamGroups.Single().LearningRate.Should().Be(0.01 * 0.5 * 0.5 * 0.5 * 0.5 * 0.5, "StepLR decayed five times, so the product was tested across its drops");
    }

    [Fact]
    public void AFallingFittedLineIsHeldAtZeroInsteadOfTurningNegative()
    {
        var fit = new ScheduleFitResult(ScheduleFamily.Linear, 1.0, -0.01, 1);
        var c = fit.ToCorrection();
        c.Factor(50).Should().Be(0.5);
        c.Factor(100).Should().Be(0);
        c.Factor(150).Should().Be(0);
        new LinearCorrection(1.0, -0.01).Factor(150).Should().BeApproximately(-0.5, 1e-15, "a hand-built line keeps its old meaning");
        FluentActions.Invoking(() => new ScheduleFitResult(ScheduleFamily.Exponential, double.NaN, 1, 0).ToCorrection())
            .Should().Throw<ArgumentException>().WithParameterName("fit");
    }

    /// <summary>
    /// Global SGD(0.1)#SGD(η_D): the graft's step is 0.1·g, so the rate it gives SGD's direction is 0.1 at every step.
    /// Against D's own schedule 0.1 / c(t) the correction the recorder reports is c(t), whatever η_D is inside the graft.
    /// </summary>
    [Theory]
    [MemberData(nameof(Families))]
    public void TheRecorderReportsTheCorrectionAgainstDsOwnScheduleAndFitsItInOneCall(ScheduleFamily family)
    {
        var (c, a, b) = Known(family);
        foreach (double directionLr in new[] { 1.0, 0.25 }) {
            var w = Fixtures.MakeParameters(Fixtures.Shapes);
            using var graft = new GraftOptimizer(GenericSecondMomentOptimizer.Sgd(w, 0.1), GenericSecondMomentOptimizer.Sgd(w, directionLr),
                new GraftOptions { Granularity = GraftGranularity.Global, OwnsChildren = true });
            using var recorder = new StepNormRecorder(graft, new RecorderOptions { FlushEvery = 7 });
            Fixtures.Run(graft, w, 1, 60);
            Func<long, double> ownRate = t => 0.1 / c(t);
            var (steps, corrections) = recorder.Corrections(ownRate);
            steps.Should().Equal(Enumerable.Range(1, 60).Select(i => (double)i));
            var (_, ratios) = recorder.GlobalRatios();
            ratios[0].Should().BeApproximately(0.1 / directionLr, 1e-12, "the raw ratio depends on D's rate inside the graft");
            for (int i = 0; i < 60; i++) corrections[i].Should().BeApproximately(c(i + 1), 1e-12 * c(i + 1));

            var fit = recorder.FitCorrection(ownRate);
            fit.Family.Should().Be(family);
            fit.A.Should().BeApproximately(a, 1e-9);
            fit.B.Should().BeApproximately(b, 1e-9);
            recorder.FitCorrection(ownRate, ScheduleFamily.Linear).Family.Should().Be(ScheduleFamily.Linear);
            recorder.Corrections(ownRate, "p1").corrections[5].Should().BeApproximately(c(6), 1e-12 * c(6), "a tensor's series uses its group's rate");
        }
    }

    [Fact]
    public void BadDirectionRatesAndNamesAreRejectedWithTheFix()
    {
        var w = Fixtures.MakeParameters(Fixtures.Shapes);
        using var graft = new GraftOptimizer(GenericSecondMomentOptimizer.Sgd(w, 0.1), GenericSecondMomentOptimizer.Sgd(w, 1),
            new GraftOptions { Granularity = GraftGranularity.Global, OwnsChildren = true });
        using var recorder = new StepNormRecorder(graft);
        Fixtures.Run(graft, w, 1, 5);
        FluentActions.Invoking(() => recorder.Corrections(t => t == 3 ? 0 : 1)).Should().Throw<ArgumentException>()
            .WithParameterName("directionRate").WithMessage("*directionRate(3) = 0*positive*");
        FluentActions.Invoking(() => recorder.Corrections(t => 1, "nope")).Should().Throw<ArgumentException>()
            .WithParameterName("tensor").WithMessage("*'nope'*p0*");
        using var late = new StepNormRecorder(graft);
        FluentActions.Invoking(() => late.FitCorrection(t => 1)).Should().Throw<InvalidOperationException>()
            .WithMessage("*0 recorded steps*at least 3*");
    }

    [Fact]
    public void GlobalCorrectionNeedsOneDirectionRateButTensorSeriesUseTheirGroups()
    {
        var w = Fixtures.MakeParameters(Fixtures.Shapes);
        var d = new GenericSecondMomentOptimizer(
            new[] { new GenericSecondMomentOptimizer.ParamGroup(w.Take(2)), new GenericSecondMomentOptimizer.ParamGroup(w.Skip(2), new SecondMomentOptions { LearningRate = 4 }) },
            GenericSecondMomentOptimizer.BaseOptions(1));
        var m = new GenericSecondMomentOptimizer(
            new[] { new GenericSecondMomentOptimizer.ParamGroup(w.Take(2)), new GenericSecondMomentOptimizer.ParamGroup(w.Skip(2)) },
            GenericSecondMomentOptimizer.BaseOptions(0.1));
        using var graft = new GraftOptimizer(m, d, new GraftOptions { OwnsChildren = true });
        using var recorder = new StepNormRecorder(graft);
        Fixtures.Run(graft, w, 1, 4);
        FluentActions.Invoking(() => recorder.Corrections(t => 0.1)).Should().Throw<InvalidOperationException>().WithMessage("*different learning rates*tensor*");
        var ratios3 = recorder.Records().Where(r => r.Tensor == "p3").Select(r => r.Ratio).ToArray();
        ratios3[0].Should().BeApproximately(0.1 / 4, 1e-12, "p3's ratio is against D's rate 4");
        recorder.Corrections(t => 0.1, "p3").corrections.Should().OnlyContain(v => Math.Abs(v - 1) < 1e-12);
        recorder.Corrections(t => 0.1, "p0").corrections.Should().OnlyContain(v => Math.Abs(v - 1) < 1e-12);
    }
}
