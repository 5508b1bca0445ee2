namespace AdaGraft.Tests;

/// <summary>
/// Non-finite gradients: by default they flow through (as in torch.optim); with SkipNonFiniteSteps a step with a
/// NaN or Inf changes neither parameters nor state, so the run equals one that never saw those steps.
/// </summary>
public class NonFiniteTests
{
    private static readonly int[] PoisonedSteps = { 3, 7 };

    /// <summary>Sets step gradients; on poisoned steps tensor 0 gets a NaN and (step 7) tensor 2 an Inf.</summary>
    private static void SetPoisoned(List<Parameter> ps, int step)
    {
        Fixtures.SetGradients(ps, step);
        if (!PoisonedSteps.Contains(step)) return;
        using (torch.no_grad()) {
            ps[0].grad!.view(-1)[1] = double.NaN;
            if (step == 7) ps[2].grad!.view(-1)[3] = double.PositiveInfinity;
        }
    }

    [Theory]
    [MemberData(nameof(OptimizerTable.GenericNames), MemberType = typeof(OptimizerTable))]
    public void SkippedStepsLeaveNoTrace(string name)
    {
        var guarded = Fixtures.MakeParameters(Fixtures.Shapes);
        var reference = Fixtures.Clone(guarded);
        using var a = OptimizerTable.GenericFactory(name)(guarded);
        using var b = OptimizerTable.GenericFactory(name)(reference);
        a.SkipNonFiniteSteps = true;
        for (int step = 0; step < 12; step++) {
            SetPoisoned(guarded, step);
            a.step();
            if (PoisonedSteps.Contains(step)) continue; // the reference never sees the poisoned steps
            Fixtures.SetGradients(reference, step);
            b.step();
        }
        Fixtures.Snapshot(guarded).SelectMany(x => x).Should().OnlyContain(v => double.IsFinite(v));
        Fixtures.MaxRelativeDifference(guarded, reference).Should().BeLessThanOrEqualTo(1e-12);
        a.SkippedSteps.Should().Be(2);
        b.SkippedSteps.Should().Be(0);
    }

    [Fact]
    public void ByDefaultNonFiniteGradientsFlowThroughAsInTorchOptim()
    {
        var ps = Fixtures.MakeParameters(Fixtures.Shapes);
        var builtIn = Fixtures.Clone(ps);
        using var ours = GenericSecondMomentOptimizer.TorchAdam(ps, lr: 0.01);
        using var theirs = optim.Adam(builtIn, lr: 0.01);
        SetPoisoned(ps, 3);
        SetPoisoned(builtIn, 3);
        ours.step();
        theirs.step();
        double.IsNaN(ps[0].detach().view(-1)[1].item<double>()).Should().BeTrue();
        double.IsNaN(builtIn[0].detach().view(-1)[1].item<double>()).Should().BeTrue("TorchSharp's Adam behaves the same way");
    }

    [Theory]
    [InlineData(GraftGranularity.PerTensor, GraftPoint.AfterMomentum)]
    [InlineData(GraftGranularity.Global, GraftPoint.AfterMomentum)]
    [InlineData(GraftGranularity.PerBlock, GraftPoint.AfterMomentum)]
    [InlineData(GraftGranularity.PerTensor, GraftPoint.BeforeMomentum)]
    public void GraftSkipsNonFiniteStepsWithoutTrace(GraftGranularity g, GraftPoint point)
    {
        var guarded = Fixtures.MakeParameters(Fixtures.Shapes);
        var reference = Fixtures.Clone(guarded);
        GraftOptimizer Make(List<Parameter> ps) => point == GraftPoint.AfterMomentum
            ? new(GenericSecondMomentOptimizer.HeavyBall(ps, 0.02), GenericSecondMomentOptimizer.Adam(ps, 1), new GraftOptions { Granularity = g, BlockSize = 4, OwnsChildren = true })
            : new(GenericSecondMomentOptimizer.Sgd(ps, 0.02), GenericSecondMomentOptimizer.Adam(ps, 1, beta1: 0), new GraftOptions { Granularity = g, Point = point, OwnsChildren = true });
        using var a = Make(guarded);
        using var b = Make(reference);
        a.SkipNonFiniteSteps = true;
        for (int step = 0; step < 12; step++) {
            SetPoisoned(guarded, step);
            a.step();
            if (PoisonedSteps.Contains(step)) continue;
            Fixtures.SetGradients(reference, step);
            b.step();
        }
        Fixtures.MaxRelativeDifference(guarded, reference).Should().BeLessThanOrEqualTo(1e-12);
        a.SkippedSteps.Should().Be(2);
    }

    [Fact]
    public void BlackBoxGraftCannotSkipOnTheDevice()
    {
        var ps = Fixtures.MakeParameters(Fixtures.Shapes);
        using var graft = new GraftOptimizer(optim.SGD(ps, 0.1), optim.Adam(ps, lr: 1), new GraftOptions { OwnsChildren = true });
        var act = () => graft.SkipNonFiniteSteps = true;
        act.Should().Throw<NotSupportedException>().WithMessage("*closed-form*");
    }

    [Fact]
    public void SaveAfterSkippedStepsResumesExactly()
    {
        var ps = Fixtures.MakeParameters(Fixtures.Shapes);
        using var a = GenericSecondMomentOptimizer.Adam(ps, 0.01);
        a.SkipNonFiniteSteps = true;
        for (int step = 0; step < 6; step++) {
            SetPoisoned(ps, step);
            a.step();
        }
        using var ms = new System.IO.MemoryStream();
        a.save_state_dict(new System.IO.BinaryWriter(ms));
        var copy = Fixtures.Clone(ps);
        using var b = GenericSecondMomentOptimizer.Adam(copy, 0.01);
        ms.Position = 0;
        b.load_state_dict(new System.IO.BinaryReader(ms));
        b.StateOf(copy[0]).Step.Should().Be(5, "the saved step count is the applied one");
        Fixtures.RunAll(6, 4, (ps, a), (copy, b));
        Fixtures.MaxRelativeDifference(copy, ps).Should().BeLessThanOrEqualTo(1e-12);
    }
}
