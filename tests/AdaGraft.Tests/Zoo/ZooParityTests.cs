namespace AdaGraft.Tests.Zoo;

/// <summary>The AMSGrad preset reproduces TorchSharp's Adam with amsgrad: float64, 100 steps, relative 1e-10.</summary>
public class ZooParityTests
{
    [Theory]
    [InlineData(0.01, 0.0)]
    [InlineData(0.02, 0.05)]
    public void AmsGradPresetMatchesTorchAdamAmsGrad(double lr, double weightDecay)
    {
        var a = Fixtures.MakeParameters(Fixtures.Shapes);
        var b = Fixtures.Clone(a);
        using var ours = GenericSecondMomentOptimizer.AmsGrad(a, lr: lr, weight_decay: weightDecay);
        using var theirs = optim.Adam(b, lr: lr, weight_decay: weightDecay, amsgrad: true);
        ours.Defaults.AmsGrad.Should().BeTrue();
        Fixtures.WorstDivergence(ours, a, theirs, b, steps: 100).Should().BeLessThanOrEqualTo(1e-10);
        Fixtures.MaxRelativeDifference(a, Fixtures.MakeParameters(Fixtures.Shapes)).Should().BeGreaterThan(1e-3);
    }

    [Fact]
    public void AmsGradDiffersFromAdamOnTheSameStream()
    {
        // Without the running maximum the trajectory differs: the preset really turns AMSGrad on.
        var a = Fixtures.MakeParameters(Fixtures.Shapes);
        var b = Fixtures.Clone(a);
        using var ams = GenericSecondMomentOptimizer.AmsGrad(a, lr: 0.01);
        using var adam = GenericSecondMomentOptimizer.TorchAdam(b, lr: 0.01);
        Fixtures.RunAll(0, 30, (a, ams), (b, adam));
        Fixtures.MaxRelativeDifference(a, b).Should().BeGreaterThan(1e-6);
    }
}
