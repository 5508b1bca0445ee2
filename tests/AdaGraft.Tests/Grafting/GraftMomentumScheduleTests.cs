using static TorchSharp.torch.optim;

namespace AdaGraft.Tests.Grafting;

/// <summary>
/// Schedulers that cycle momentum or betas (<c>OneCycleLR</c>, <c>CyclicLR</c>) set them on the graft's parameter groups
/// (M's), and the graft passes every change on to D before the next step: Graft(A, A′) takes A's steps under such a
/// schedule (float64, 1e-10), for Adam-type and SGD-momentum-type A, closed form and black box, rule-based and built-in.
/// </summary>
public sealed class GraftMomentumScheduleTests
{
    private const int Steps = 30;

    private static optim.Optimizer Make(string a, IEnumerable<Parameter> ps) => a switch {
        "torch-adam" => GenericSecondMomentOptimizer.TorchAdam(ps, 0.01),
        "torch-sgd-momentum" => GenericSecondMomentOptimizer.TorchSgd(ps, 0.05, momentum: 0.9),
        "paper-adam" => GenericSecondMomentOptimizer.Adam(ps, 0.01),
        "builtin-adam" => optim.Adam(ps, 0.01),
        "builtin-sgd-momentum" => optim.SGD(ps, 0.05, momentum: 0.9),
        _ => throw new ArgumentOutOfRangeException(nameof(a), a, null),
    };

    private static optim.lr_scheduler.LRScheduler Schedule(string scheduler, optim.Optimizer opt, bool adamType) => scheduler switch {
        "OneCycleLR" => optim.lr_scheduler.OneCycleLR(opt, adamType ? 0.01 : 0.05, total_steps: Steps + 1),
        // TorchSharp's CyclicLR peaks at 2·max − base: 1.0 with its defaults (valid for SGD), 0.95 here for Adam.
        "CyclicLR" => adamType
            ? optim.lr_scheduler.CyclicLR(opt, 0.001, 0.01, step_size_up: 5, base_momentum: 0.85, max_momentum: 0.9)
            : optim.lr_scheduler.CyclicLR(opt, 0.005, 0.05, step_size_up: 5),
        _ => throw new ArgumentOutOfRangeException(nameof(scheduler), scheduler, null),
    };

    public static TheoryData<string, string, GraftPath> Cases => new() {
        { "torch-adam", "OneCycleLR", GraftPath.ClosedForm },
        { "torch-adam", "OneCycleLR", GraftPath.BlackBox },
        { "torch-adam", "CyclicLR", GraftPath.ClosedForm },
        { "paper-adam", "OneCycleLR", GraftPath.ClosedForm },
        { "torch-sgd-momentum", "OneCycleLR", GraftPath.ClosedForm },
        { "torch-sgd-momentum", "CyclicLR", GraftPath.ClosedForm },
        { "torch-sgd-momentum", "CyclicLR", GraftPath.BlackBox },
        { "builtin-adam", "OneCycleLR", GraftPath.BlackBox },
        { "builtin-sgd-momentum", "OneCycleLR", GraftPath.BlackBox },
        { "builtin-sgd-momentum", "CyclicLR", GraftPath.BlackBox },
    };

    private static double Beta1(optim.Optimizer opt) => opt.ParamGroups.Single() switch {
        IBetas b => b.Betas.Item1,
        IMomentum m => m.Momentum,
        var g => throw new InvalidOperationException(g.GetType().Name),
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void AGraftOfAWithItselfIsAUnderAMomentumSchedule(string a, string scheduler, GraftPath path)
    {
        bool adamType = a.Contains("adam", StringComparison.Ordinal);
        var w = Fixtures.MakeParameters(Fixtures.Shapes);
        var reference = Fixtures.Clone(w);
        var m = Make(a, w);
        var d = Make(a, w);
        using var graft = new GraftOptimizer(m, d, new GraftOptions { Path = path, OwnsChildren = true });
        using var alone = Make(a, reference);
        var graftSchedule = Schedule(scheduler, graft, adamType);
        var aloneSchedule = Schedule(scheduler, alone, adamType);
        double first = Beta1(alone);
        var seen = new HashSet<double>();
        for (int step = 0; step < Steps; step++) {
            Fixtures.StepAll(step, (w, graft), (reference, alone));
            Beta1(d).Should().Be(Beta1(alone), $"D follows the scheduled β1 (step {step})");
            seen.Add(Beta1(alone));
            graftSchedule.step();
            aloneSchedule.step();
            Fixtures.MaxRelativeDifference(w, reference).Should().BeLessThanOrEqualTo(1e-10, $"after step {step}");
        }
        seen.Should().HaveCountGreaterThan(5, "the schedule cycled β1");
        seen.Should().Contain(v => v != first);
        if (scheduler == "CyclicLR" && !adamType) seen.Should().Contain(1.0, "TorchSharp's CyclicLR reaches momentum 1");
        Fixtures.MaxRelativeDifference(w, Fixtures.MakeParameters(Fixtures.Shapes)).Should().BeGreaterThan(1e-3, "the parameters moved");
    }

    [Fact]
    public void DKeepsItsOwnBetasUntilMsChange()
    {
        var w = Fixtures.MakeParameters(Fixtures.Shapes);
        var m = GenericSecondMomentOptimizer.TorchSgd(w, 0.05, momentum: 0.9);
        var d = GenericSecondMomentOptimizer.TorchAdam(w, 0.01, beta1: 0.8, beta2: 0.99);
        using var graft = new GraftOptimizer(m, d, new GraftOptions { OwnsChildren = true });
        Fixtures.Run(graft, w, 0, 3);
        d.Groups.Single().Options.Beta1.Should().Be(0.8);
        d.Groups.Single().Options.Beta2.Should().Be(0.99);

        // Only what changed in M is passed on: β1 here; D's own β2 (0.99, not SGD's 1) stays.
        ((IMomentum)graft.ParamGroups.Single()).Momentum = 0.5;
        Fixtures.SetGradients(w, 3);
        graft.step();
        d.Groups.Single().Options.Beta1.Should().Be(0.5);
        d.Groups.Single().Options.Beta2.Should().Be(0.99);

        // The graft's own Momentum and Betas properties set both children.
        graft.Momentum = 0.7;
        m.Momentum.Should().Be(0.7);
        d.Betas.Should().Be((0.7, 0.99));
    }

    [Fact]
    public void AStepThatFailsOnAPassedOnValueLeavesDAsItWas()
    {
        var w = Fixtures.MakeParameters(Fixtures.Shapes);
        var m = GenericSecondMomentOptimizer.TorchSgd(w, 0.05, momentum: 0.9);
        var d = GenericSecondMomentOptimizer.TorchAdam(w, 0.01, beta1: 0.9);
        using var graft = new GraftOptimizer(m, d, new GraftOptions { OwnsChildren = true });
        Fixtures.SetGradients(w, 0);
        graft.step();
        var before = Fixtures.Snapshot(w);

        // Momentum 1 is valid for SGD (M) but not for Adam (D): the step refuses, naming D's argument, and changes nothing.
        ((IMomentum)graft.ParamGroups.Single()).Momentum = 1.0;
        Fixtures.SetGradients(w, 1);
        graft.Invoking(g => g.step()).Should().Throw<ArgumentOutOfRangeException>().Which.ParamName.Should().Be("beta1");
        d.Groups.Single().Options.Beta1.Should().Be(0.9);
        TestTensors.ShouldBeBitIdentical(Fixtures.Snapshot(w), before);

        // Once M's momentum is valid for both, the next step passes it on.
        ((IMomentum)graft.ParamGroups.Single()).Momentum = 0.95;
        graft.step();
        d.Groups.Single().Options.Beta1.Should().Be(0.95);
    }

    [Fact]
    public void ASaveBetweenSchedulerAndStepHoldsTheBetasDFollows()
    {
        var w = Fixtures.MakeParameters(Fixtures.Shapes);
        var m = GenericSecondMomentOptimizer.TorchAdam(w, 0.01);
        var d = GenericSecondMomentOptimizer.TorchAdam(w, 0.01);
        using var graft = new GraftOptimizer(m, d, new GraftOptions { OwnsChildren = true });
        Fixtures.SetGradients(w, 0);
        graft.step();
        ((IBetas)graft.ParamGroups.Single()).Betas = (0.85, 0.999);

        using var stream = new MemoryStream();
        using (var writer = new BinaryWriter(stream, System.Text.Encoding.UTF8, leaveOpen: true)) graft.save_state_dict(writer);
        d.Groups.Single().Options.Beta1.Should().Be(0.85, "the save brought D up to date first");
        var resumed = Fixtures.Clone(w);
        var m2 = GenericSecondMomentOptimizer.TorchAdam(resumed, 0.01);
        var d2 = GenericSecondMomentOptimizer.TorchAdam(resumed, 0.01);
        using var loaded = new GraftOptimizer(m2, d2, new GraftOptions { OwnsChildren = true });
        stream.Position = 0;
        using (var reader = new BinaryReader(stream)) loaded.load_state_dict(reader);
        d2.Groups.Single().Options.Beta1.Should().Be(0.85);
        m2.Groups.Single().Options.Beta1.Should().Be(0.85);
        Fixtures.RunAll(1, 3, (w, graft), (resumed, loaded));
        TestTensors.ShouldBeBitIdentical(Fixtures.Snapshot(resumed), Fixtures.Snapshot(w));
    }
}
