namespace AdaGraft.Tests.Grafting;

/// <summary>
/// The learning rate of a graft is M's: a scheduler on the graft drives M exactly as it would drive M alone, and D's
/// learning rate has no effect.
/// </summary>
public class GraftSchedulerTests
{
    private const int Steps = 10;

    public static TheoryData<string, GraftPath> Singles() => new() {
        { "paper-adam", GraftPath.ClosedForm },
        { "paper-adam", GraftPath.BlackBox },
        { "torch-adam", GraftPath.BlackBox },
    };

    [Theory]
    [MemberData(nameof(Singles))]
    public void StepLROnTheGraftEqualsStepLROnMAlone(string a, GraftPath path)
    {
        var w = Fixtures.MakeParameters(Fixtures.Shapes);
        var reference = Fixtures.Clone(w);
        var unscheduled = Fixtures.Clone(w);

        var m = ChildCatalog.Make(a, w);
        using var graft = new GraftOptimizer(m, ChildCatalog.Make(a, w), new GraftOptions { Path = path, OwnsChildren = true });
        using var alone = ChildCatalog.Make(a, reference);
        using var plain = ChildCatalog.Make(a, unscheduled);
        double lr0 = alone.ParamGroups.Single().LearningRate;
        var graftScheduler = optim.lr_scheduler.StepLR(graft, step_size: 2, gamma: 0.5);
        var aloneScheduler = optim.lr_scheduler.StepLR(alone, step_size: 2, gamma: 0.5);

        for (int step = 0; step < Steps; step++) {
            m.ParamGroups.Single().LearningRate.Should().Be(alone.ParamGroups.Single().LearningRate, $"M's learning rate at step {step}");
            Fixtures.StepAll(step, (w, graft), (reference, alone), (unscheduled, plain));
            graftScheduler.step();
            aloneScheduler.step();
            Fixtures.MaxRelativeDifference(w, reference).Should().BeLessThanOrEqualTo(1e-10, $"after step {step}");
        }

        // The schedule really ran: lr halves every 2 steps (10 scheduler steps → 0.5^5), and the result differs
        // from the run without a scheduler.
        m.ParamGroups.Single().LearningRate.Should().BeApproximately(lr0 * 0.03125, 1e-15);
        Fixtures.MaxRelativeDifference(unscheduled, reference).Should().BeGreaterThan(1e-4);
    }

    [Theory]
    [InlineData("paper-adam", "paper-sgd")]
    [InlineData("torch-adam", "torch-sgd")]
    public void ParamGroupsAreMs(string mName, string dName)
    {
        var w = Fixtures.MakeParameters(Fixtures.Shapes);
        var m = ChildCatalog.Make(mName, w);
        var d = ChildCatalog.Make(dName, w);
        using var graft = new GraftOptimizer(m, d, new GraftOptions { OwnsChildren = true });

        graft.ParamGroups.Should().Equal(m.ParamGroups, (x, y) => ReferenceEquals(x, y));
        double dLr = d.ParamGroups.Single().LearningRate;

        graft.ParamGroups.Single().LearningRate = 0.125;
        m.ParamGroups.Single().LearningRate.Should().Be(0.125);
        d.ParamGroups.Single().LearningRate.Should().Be(dLr, "the graft's learning rate is M's only");
    }

    [Theory]
    [InlineData("paper-sgd", "paper-adam", GraftGranularity.PerTensor, GraftPath.ClosedForm)]
    [InlineData("paper-adam", "paper-adagrad", GraftGranularity.Global, GraftPath.ClosedForm)]
    [InlineData("paper-sgd", "paper-adam", GraftGranularity.PerTensor, GraftPath.BlackBox)]
    [InlineData("torch-sgd", "torch-adam", GraftGranularity.PerTensor, GraftPath.BlackBox)]
    [InlineData("torch-adam", "torch-heavyball", GraftGranularity.Global, GraftPath.BlackBox)]
    public void ChangingDsLearningRateChangesNothing(string mName, string dName, GraftGranularity g, GraftPath path)
    {
        var w1 = Fixtures.MakeParameters(Fixtures.Shapes);
        var w2 = Fixtures.Clone(w1);
        var options = new GraftOptions { Granularity = g, Path = path, OwnsChildren = true };
        using var g1 = ChildCatalog.Graft(mName, dName, w1, options);
        var d2 = ChildCatalog.Make(dName, w2);
        using var g2 = new GraftOptimizer(ChildCatalog.Make(mName, w2), d2, options);
        double dLr = d2.ParamGroups.Single().LearningRate;
        for (int step = 0; step < Steps; step++) {
            // Change D's learning rate mid-run, several times.
            if (step % 3 == 1) d2.ParamGroups.Single().LearningRate = dLr * (step + 2) * 7.5;
            Fixtures.StepAll(step, (w1, g1), (w2, g2));
        }
        Fixtures.MaxRelativeDifference(w2, w1).Should().BeLessThanOrEqualTo(1e-9);
        Fixtures.MaxRelativeDifference(w1, Fixtures.MakeParameters(Fixtures.Shapes)).Should().BeGreaterThan(1e-3, "the parameters must have moved");
    }

    [Theory]
    [InlineData("paper-adam", "paper-sgd", GraftPath.ClosedForm)]
    [InlineData("torch-adam", "torch-sgd", GraftPath.BlackBox)]
    public void ChangingTheGraftsLearningRateScalesTheStep(string mName, string dName, GraftPath path)
    {
        // Setting the graft's LR is setting M's LR: equal to a graft built with M at that LR from the start.
        var w1 = Fixtures.MakeParameters(Fixtures.Shapes);
        var w2 = Fixtures.Clone(w1);
        using var g1 = new GraftOptimizer(ChildCatalog.Make(mName, w1, lrScale: 0.5), ChildCatalog.Make(dName, w1), new GraftOptions { Path = path, OwnsChildren = true });
        using var g2 = ChildCatalog.Graft(mName, dName, w2, new GraftOptions { Path = path, OwnsChildren = true });
        foreach (var group in g2.ParamGroups) group.LearningRate *= 0.5;
        Fixtures.RunAll(0, Steps, (w1, g1), (w2, g2));
        Fixtures.MaxRelativeDifference(w2, w1).Should().BeLessThanOrEqualTo(1e-10);
    }
}
