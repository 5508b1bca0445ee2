using static AdaGraft.Tests.Support.StateBytes;
using static TorchSharp.torch.optim;

namespace AdaGraft.Tests.Hardening;

/// <summary>
/// A checkpoint says what it holds: loading a file of another algorithm (Algorithm 1's convention switches; a graft's
/// children and granularity) raises before anything changes, naming each difference, through every loading path;
/// numeric hyperparameters (learning rate, betas, ε, weight decay) load from the file, as PyTorch's
/// <c>load_state_dict</c> does.
/// </summary>
public sealed class CheckpointAlgorithmTests
{
    [Fact]
    public void ATorchAdamCheckpointIsRefusedByAHeavyBallOptimizerNamingEachDifference()
    {
        using var adam = Fixtures.Trained(p => GenericSecondMomentOptimizer.TorchAdam(p, 0.01), 3, out var ps);
        var tagged = Save(adam.save_state_dict);
        var generic = Save(((OptimizerHelper)adam).save_state_dict);

        using var heavyBall = GenericSecondMomentOptimizer.HeavyBall(Fixtures.Clone(ps), 0.02);
        Fixtures.Run(heavyBall, heavyBall.Parameters.ToList(), 0, 2);
        var before = Save(heavyBall.save_state_dict);
        var loads = new (string How, Action Load)[] {
            ("tagged, own reference", () => Load(tagged, heavyBall.load_state_dict)),
            ("generic, own reference", () => Load(generic, heavyBall.load_state_dict)),
            ("generic, OptimizerHelper reference", () => Load(generic, ((OptimizerHelper)heavyBall).load_state_dict)),
            ("state dict", () => heavyBall.load_state_dict(adam.state_dict())),
        };
        foreach (var (how, load) in loads) {
            var message = FluentActions.Invoking(load).Should().Throw<InvalidDataException>(how).Which.Message;
            message.Should().Contain("another algorithm", how);
            foreach (var switchName in new[] { "Preconditioned", "ScaleFirstMoment", "ScaleSecondMoment", "BiasCorrection" })
                message.Should().Contain($"{switchName}: True in the file, False here", how);
            message.Should().NotContain("Beta1", "numbers are not differences of algorithm");
            Save(heavyBall.save_state_dict).Should().Equal(before, $"nothing changed ({how})");
        }
    }

    [Fact]
    public void AnSgdAdamGraftCheckpointIsRefusedByAnSgdAdaGradGraftNamingDsDifferences()
    {
        using var source = Fixtures.Trained(p => new GraftOptimizer(GenericSecondMomentOptimizer.HeavyBall(p, 0.02), GenericSecondMomentOptimizer.Adam(p, 0.01), new GraftOptions { OwnsChildren = true }), 3, out var ps);
        var tagged = Save(source.save_state_dict);

        var other = Fixtures.Clone(ps);
        using var target = new GraftOptimizer(GenericSecondMomentOptimizer.HeavyBall(other, 0.02), GenericSecondMomentOptimizer.AdaGrad(other, 0.01), new GraftOptions { OwnsChildren = true });
        Fixtures.Run(target, other, 0, 2);
        var before = Save(target.save_state_dict);
        var beforeValues = Fixtures.Snapshot(other);

        var message = FluentActions.Invoking(() => Load(tagged, target.load_state_dict)).Should().Throw<InvalidDataException>().Which.Message;
        message.Should().Contain("D (direction): ScaleFirstMoment: True in the file, False here")
            .And.Contain("D (direction): BiasCorrection: True in the file, False here")
            .And.Contain("D (direction): EpsilonPlacement: OutsideRoot in the file, InsideRoot here")
            .And.NotContain("M (magnitude)", "M is the same algorithm");
        Save(target.save_state_dict).Should().Equal(before);
        TestTensors.ShouldBeBitIdentical(Fixtures.Snapshot(other), beforeValues);

        // The in-memory state dict is checked the same way, before either child changes.
        FluentActions.Invoking(() => target.load_state_dict(source.state_dict()))
            .Should().Throw<InvalidDataException>().Which.Message.Should().Contain("D (direction): ScaleFirstMoment");
        Save(target.save_state_dict).Should().Equal(before);
    }

    [Fact]
    public void AGraftOfOtherChildrenAndGranularityIsRefusedNamingEveryDifference()
    {
        using var source = Fixtures.Trained(p => new GraftOptimizer(GenericSecondMomentOptimizer.TorchAdam(p, 0.01), optim.Adam(p, 0.01), new GraftOptions { OwnsChildren = true, Path = GraftPath.BlackBox }), 2, out var ps);
        var tagged = Save(source.save_state_dict);

        var other = Fixtures.Clone(ps);
        using var target = new GraftOptimizer(GenericSecondMomentOptimizer.HeavyBall(other, 0.02), optim.SGD(other, 0.1),
            new GraftOptions { OwnsChildren = true, Path = GraftPath.BlackBox, Granularity = GraftGranularity.Global });
        var before = Save(target.save_state_dict);
        var message = FluentActions.Invoking(() => Load(tagged, target.load_state_dict)).Should().Throw<InvalidDataException>().Which.Message;
        message.Should().Contain("granularity: PerTensor in the file, Global here")
            .And.Contain("M (magnitude): BiasCorrection: True in the file, False here")
            .And.Contain("D (direction): a Adam in the file, a SGD here");
        Save(target.save_state_dict).Should().Equal(before);
    }

    [Fact]
    public void TheSameAlgorithmWithAnotherLearningRateLoadsAndTakesTheFilesNumbers()
    {
        using var source = Fixtures.Trained(p => GenericSecondMomentOptimizer.TorchAdam(p, lr: 0.01, beta1: 0.8, weight_decay: 0.01), 3, out var ps);
        var tagged = Save(source.save_state_dict);

        var resumed = Fixtures.Clone(ps);
        using var target = GenericSecondMomentOptimizer.TorchAdam(resumed, lr: 0.5);
        Load(tagged, target.load_state_dict);
        target.ParamGroups.Single().LearningRate.Should().Be(0.01, "the file's learning rate, as PyTorch's load_state_dict");
        target.Groups.Single().Options.Beta1.Should().Be(0.8);
        target.Groups.Single().Options.WeightDecay.Should().Be(0.01);
        Fixtures.Run(source, ps, 3, 3);
        Fixtures.Run(target, resumed, 3, 3);
        TestTensors.ShouldBeBitIdentical(Fixtures.Snapshot(resumed), Fixtures.Snapshot(ps));

        // Through the base reference too; and the paper's heavy ball loads a TorchSgd file (the same switches).
        using var viaBase = GenericSecondMomentOptimizer.TorchAdam(Fixtures.Clone(ps), lr: 0.5);
        Load(Save(((OptimizerHelper)source).save_state_dict), ((OptimizerHelper)viaBase).load_state_dict);
        viaBase.ParamGroups.Single().LearningRate.Should().Be(0.01);
        using var sgd = GenericSecondMomentOptimizer.TorchSgd(Fixtures.Clone(ps), 0.1, momentum: 0.5);
        using var heavyBall = GenericSecondMomentOptimizer.HeavyBall(Fixtures.Clone(ps), 0.02);
        Load(Save(sgd.save_state_dict), heavyBall.load_state_dict);
        heavyBall.Groups.Single().Options.Beta1.Should().Be(0.5);
    }

    [Fact]
    public void AGraftOfTheSameAlgorithmWithOtherLearningRatesLoadsTheFilesRates()
    {
        using var source = Fixtures.Trained(p => new GraftOptimizer(GenericSecondMomentOptimizer.HeavyBall(p, 0.02), GenericSecondMomentOptimizer.TorchAdam(p, 0.01), new GraftOptions { OwnsChildren = true }), 3, out var ps);
        var tagged = Save(source.save_state_dict);
        var resumed = Fixtures.Clone(ps);
        using var target = new GraftOptimizer(GenericSecondMomentOptimizer.HeavyBall(resumed, 0.3, momentum: 0.5), GenericSecondMomentOptimizer.TorchAdam(resumed, 1), new GraftOptions { OwnsChildren = true });
        Load(tagged, target.load_state_dict);
        target.ParamGroups.Single().LearningRate.Should().Be(0.02);
        ((IMomentum)target.Magnitude.ParamGroups.Single()).Momentum.Should().Be(0.9);
        Fixtures.Run(source, ps, 3, 3);
        Fixtures.Run(target, resumed, 3, 3);
        TestTensors.ShouldBeBitIdentical(Fixtures.Snapshot(resumed), Fixtures.Snapshot(ps));
    }
}
