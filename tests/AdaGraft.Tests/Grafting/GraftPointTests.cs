namespace AdaGraft.Tests.Grafting;

/// <summary>Grafting before momentum (Shampoo's graft point), and momentum/beta forwarding to M for schedulers.</summary>
public class GraftPointTests
{
    [Theory]
    [InlineData(GraftGranularity.PerTensor)]
    [InlineData(GraftGranularity.Global)]
    [InlineData(GraftGranularity.PerBlock)]
    public void GraftOfMomentumFreeSgdBeforeMomentumIsHeavyBall(GraftGranularity g)
    {
        var w = Fixtures.MakeParameters(Fixtures.Shapes);
        var reference = Fixtures.Clone(w);
        using var graft = new GraftOptimizer(
            GenericSecondMomentOptimizer.Sgd(w, 0.03),
            GenericSecondMomentOptimizer.Sgd(w, 1),
            new GraftOptions { Point = GraftPoint.BeforeMomentum, Momentum = 0.9, Granularity = g, BlockSize = 4, OwnsChildren = true });
        using var heavyBall = GenericSecondMomentOptimizer.HeavyBall(reference, 0.03, momentum: 0.9);
        Fixtures.RunAll(0, 30, (w, graft), (reference, heavyBall));
        Fixtures.MaxRelativeDifference(w, reference).Should().BeLessThanOrEqualTo(1e-10);
    }

    [Fact]
    public void BeforeMomentumDiffersFromAfterMomentumForAdaptiveDirections()
    {
        var w1 = Fixtures.MakeParameters(Fixtures.Shapes);
        var w2 = Fixtures.Clone(w1);
        using var before = new GraftOptimizer(GenericSecondMomentOptimizer.Sgd(w1, 0.03), GenericSecondMomentOptimizer.AdaGrad(w1, 1, momentum: 0),
            new GraftOptions { Point = GraftPoint.BeforeMomentum, OwnsChildren = true });
        using var after = new GraftOptimizer(GenericSecondMomentOptimizer.HeavyBall(w2, 0.03), GenericSecondMomentOptimizer.AdaGrad(w2, 1),
            new GraftOptions { OwnsChildren = true });
        Fixtures.RunAll(0, 10, (w1, before), (w2, after));
        Fixtures.MaxRelativeDifference(w1, w2).Should().BeGreaterThan(1e-6, "the two graft points are different algorithms");
    }

    [Fact]
    public void BeforeMomentumRejectsChildrenWithMomentumAndTheBlackBoxPath()
    {
        var w = Fixtures.MakeParameters(Fixtures.Shapes);
        var act = () => new GraftOptimizer(GenericSecondMomentOptimizer.HeavyBall(w, 0.1), GenericSecondMomentOptimizer.Sgd(w, 1),
            new GraftOptions { Point = GraftPoint.BeforeMomentum });
        act.Should().Throw<System.ArgumentException>().Which.ParamName.Should().Be("magnitude");
        var box = () => new GraftOptimizer(optim.SGD(w, 0.1), optim.SGD(w, 1), new GraftOptions { Point = GraftPoint.BeforeMomentum });
        box.Should().Throw<System.ArgumentException>().WithMessage("*closed-form*");
        var bad = () => new GraftOptions { Momentum = 1 }.Validate();
        bad.Should().Throw<System.ArgumentOutOfRangeException>().Which.ParamName.Should().Be("Momentum");
    }

    [Fact]
    public void BeforeMomentumStateRoundTripIsBitIdentical()
    {
        var w = Fixtures.MakeParameters(Fixtures.Shapes);
        GraftOptimizer Make(System.Collections.Generic.List<TorchSharp.Modules.Parameter> ps) => new(
            GenericSecondMomentOptimizer.Sgd(ps, 0.03), GenericSecondMomentOptimizer.Adam(ps, 1, beta1: 0),
            new GraftOptions { Point = GraftPoint.BeforeMomentum, OwnsChildren = true });
        using var a = Make(w);
        Fixtures.Run(a, w, 0, 5);
        using var ms = new MemoryStream();
        a.save_state_dict(new BinaryWriter(ms));
        var w2 = Fixtures.Clone(w);
        using var b = Make(w2);
        ms.Position = 0;
        b.load_state_dict(new BinaryReader(ms));
        Fixtures.RunAll(5, 5, (w, a), (w2, b));
        Fixtures.Snapshot(w2).Should().BeEquivalentTo(Fixtures.Snapshot(w), o => o.WithStrictOrdering());
    }

    [Fact]
    public void OneCycleWithMomentumCyclingDrivesMsBetaThroughTheGraft()
    {
        var w = Fixtures.MakeParameters(Fixtures.Shapes);
        var m = GenericSecondMomentOptimizer.Adam(w, 0.01);
        using var graft = new GraftOptimizer(m, GenericSecondMomentOptimizer.AdaGrad(w, 1), new GraftOptions { OwnsChildren = true });
        var scheduler = optim.lr_scheduler.OneCycleLR(graft, max_lr: 0.05, total_steps: 20, cycle_momentum: true);
        var betas = new System.Collections.Generic.List<double>();
        for (int step = 0; step < 10; step++) {
            Fixtures.SetGradients(w, step);
            graft.step();
            scheduler.step();
            betas.Add(m.Groups.First().Options.Beta1!.Value);
        }
        betas.Distinct().Count().Should().BeGreaterThan(3, "OneCycleLR cycles M's β1 through the graft");
        graft.Momentum.Should().Be(m.Momentum, "the graft reads M's momentum");
        using var adagrad = new GraftOptimizer(optim.Adagrad(w, 0.1), optim.Adagrad(w, 1), new GraftOptions { OwnsChildren = true });
        var read = () => adagrad.Momentum;
        read.Should().Throw<System.NotSupportedException>();
    }
}
