using System;
using System.Collections.Generic;
using System.Linq;
using AdaGraft.Grafting;
using AdaGraft.Lab.Discovery;
using AdaGraft.Lab.Training;
using AdaGraft.Optimizers;
using FluentAssertions;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace AdaGraft.Lab.Tests;

public class LinearFitTests
{
    [Fact]
    public void RecoversANoisyLine()
    {
        var rng = new Random(42);
        double Gauss() => Math.Sqrt(-2 * Math.Log(1 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble());
        var t = Enumerable.Range(0, 2000).Select(i => (double)i).ToList();
        var y = t.Select(x => 0.2 + 1e-4 * x + 0.01 * Gauss()).ToList();
        var fit = LinearFit.Fit(t, y);
        fit.C0.Should().BeApproximately(0.2, 0.002);
        fit.C1.Should().BeApproximately(1e-4, 2e-6);
        fit.RSquared.Should().BeInRange(0.8, 1.0);
        fit.Count.Should().Be(2000);
        // R² ≈ signal / (signal + noise): signal variance (1e-4)²·Var(t) = 1e-8·2000²/12 ≈ 3.33e-3, noise 1e-4 → ≈ 0.971.
        double signal = 1e-8 * (2000.0 * 2000 - 1) / 12;
        fit.RSquared.Should().BeApproximately(signal / (signal + 1e-4), 0.005);
    }

    [Fact]
    public void ExactLineHasRSquaredOne()
    {
        var fit = LinearFit.Fit(new[] { 1.0, 2, 3, 4 }, new[] { 3.0, 5, 7, 9 });
        fit.C0.Should().BeApproximately(1, 1e-12);
        fit.C1.Should().BeApproximately(2, 1e-12);
        fit.RSquared.Should().Be(1);
        fit.At(10).Should().BeApproximately(21, 1e-12);
    }

    [Fact]
    public void LargeStepNumbersLoseNoPrecision()
    {
        var t = Enumerable.Range(0, 100).Select(i => 1e8 + i).ToList();
        var fit = LinearFit.Fit(t, t.Select(x => 5 - 3e-3 * (x - 1e8)).ToList());
        fit.C1.Should().BeApproximately(-3e-3, 1e-12);
    }

    [Fact]
    public void FitSeriesSkipsNonFinitePoints()
    {
        var fit = LinearFit.FitSeries(new[] { 1.0, double.NaN, 3, 4 });
        fit.Count.Should().Be(3);
        fit.C1.Should().BeApproximately(1, 1e-12);
    }

    [Fact]
    public void BadInputIsRejected()
    {
        ((Action)(() => LinearFit.Fit(new[] { 1.0, 2 }, new[] { 1.0 }))).Should().Throw<ArgumentException>().WithMessage("*2 points*1*");
        ((Action)(() => LinearFit.Fit(new[] { 1.0 }, new[] { 1.0 }))).Should().Throw<ArgumentException>().WithMessage("*at least 2*");
        ((Action)(() => LinearFit.Fit(new[] { 1.0, 1 }, new[] { 1.0, 2 }))).Should().Throw<ArgumentException>().WithMessage("*All x are equal*");
        ((Action)(() => LinearFit.Fit(new[] { 1.0, double.PositiveInfinity }, new[] { 1.0, 2 }))).Should().Throw<ArgumentException>().WithMessage("*not finite*");
    }
}

public class RecorderTests
{
    [Fact]
    public void RecorderRefusesMoreStepsThanItHolds()
    {
        using var r = new DeviceSeriesRecorder(2, torch.CPU, readEvery: 10);
        using var v = torch.tensor(1.5f);
        r.Record(v);
        r.Record(v);
        ((Action)(() => r.Record(v))).Should().Throw<InvalidOperationException>().WithMessage("*full*");
        r.Flush().Should().Equal(1.5, 1.5);
    }
}

public class ScheduleTests
{
    [Fact]
    public void WarmupStaircaseHasThePapersShape()
    {
        var s = new Schedule(ScheduleKind.WarmupStaircase, 900);
        s.WarmupSteps.Should().Be(50);
        s.Multiplier(0).Should().BeApproximately(1 / 50.0, 1e-12);
        s.Multiplier(49).Should().BeApproximately(1, 1e-12);
        s.Multiplier(299).Should().Be(1);
        s.Multiplier(300).Should().BeApproximately(0.1, 1e-12);
        s.Multiplier(600).Should().BeApproximately(0.01, 1e-12);
        s.Multiplier(800).Should().BeApproximately(0.001, 1e-12);
        new Schedule(ScheduleKind.Staircase, 900).Multiplier(0).Should().Be(1);
        new Schedule(ScheduleKind.Constant, 900).Multiplier(850).Should().Be(1);
    }

    [Fact]
    public void LambdaLrOnTheGraftDrivesM()
    {
        torch.manual_seed(1);
        using var lin = nn.Linear(3, 2);
        var ps = lin.parameters().ToList();
        var m = GenericSecondMomentOptimizer.HeavyBall(ps, 0.2);
        var d = GenericSecondMomentOptimizer.AdaGrad(ps, 1);
        using var graft = new GraftOptimizer(m, d, new GraftOptions { OwnsChildren = true });
        var schedule = new Schedule(ScheduleKind.WarmupStaircase, 90);
        var sched = schedule.Attach(graft, t => 2.0);
        m.ParamGroups.Single().LearningRate.Should().BeApproximately(0.2 * schedule.Multiplier(0) * 2, 1e-12);
        for (int t = 1; t <= 40; t++) sched.step();
        m.ParamGroups.Single().LearningRate.Should().BeApproximately(0.2 * 0.1 * 2, 1e-12);
        d.ParamGroups.Single().LearningRate.Should().Be(1, "D's learning rate is not scheduled");
    }

    [Fact]
    public void ParsesTheOptionSpellings()
    {
        Schedule.ParseKind("constant").Should().Be(ScheduleKind.Constant);
        Schedule.ParseKind("staircase").Should().Be(ScheduleKind.Staircase);
        Schedule.ParseKind("warmup-staircase").Should().Be(ScheduleKind.WarmupStaircase);
        ((Action)(() => Schedule.ParseKind("cosine"))).Should().Throw<ArgumentException>().WithMessage("*cosine*");
    }
}
