using System;
using System.Collections.Generic;
using System.Linq;
using AdaGraft.Grafting;
using AdaGraft.Lab.Training;
using AdaGraft.Optimizers;
using FluentAssertions;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace AdaGraft.Lab.Tests;

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
