using static TorchSharp.torch.optim;

namespace AdaGraft.Tests.DropIn;

/// <summary>
/// <c>torch.optim.SGD</c> and <c>RMSProp</c> accept momentum 1, and TorchSharp's <c>CyclicLR</c> (whose momentum has the
/// opposite sign to PyTorch's) drives momentum to exactly 1.0; the drop-ins accept it at construction and at every
/// step, and the fused kernel and the eager path both match the built-in there (float64, 1e-10).
/// </summary>
public sealed class MomentumOneTests
{
    public static TheoryData<string, bool> Cases {
        get {
            var data = new TheoryData<string, bool>();
            foreach (var name in new[] { "sgd", "sgd-nesterov", "sgd-dampening", "rmsprop" }) {
                data.Add(name, true);
                data.Add(name, false);
            }
            return data;
        }
    }

    private static (GenericSecondMomentOptimizer ours, optim.Optimizer theirs) Make(string name, List<Parameter> a, List<Parameter> b) => name switch {
        "sgd" => (GenericSecondMomentOptimizer.TorchSgd(a, 0.01, momentum: 1), optim.SGD(b, 0.01, momentum: 1)),
        "sgd-nesterov" => (GenericSecondMomentOptimizer.TorchSgd(a, 0.01, momentum: 1, nesterov: true), optim.SGD(b, 0.01, momentum: 1, nesterov: true)),
        "sgd-dampening" => (GenericSecondMomentOptimizer.TorchSgd(a, 0.01, momentum: 1, dampening: 0.5, weight_decay: 0.01), optim.SGD(b, 0.01, momentum: 1, dampening: 0.5, weight_decay: 0.01)),
        "rmsprop" => (GenericSecondMomentOptimizer.TorchRmsProp(a, 0.001, momentum: 1), optim.RMSProp(b, 0.001, momentum: 1)),
        _ => throw new ArgumentOutOfRangeException(nameof(name), name, null),
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void MomentumOneMatchesTheBuiltIn(string name, bool fusedKernel)
    {
        var a = Fixtures.MakeParameters(Fixtures.Shapes);
        var b = Fixtures.Clone(a);
        var (ours, theirs) = Make(name, a, b);
        ours.FusedCpuKernel = fusedKernel;
        using (ours)
        using (theirs) {
            Fixtures.WorstDivergence(ours, a, theirs, b, steps: 50).Should().BeLessThanOrEqualTo(1e-10, $"{name} after every step");
            ours.FusedTensorSteps.Should().Be(fusedKernel ? 50 * Fixtures.Shapes.Length : 0);
            Fixtures.MaxRelativeDifference(a, Fixtures.MakeParameters(Fixtures.Shapes)).Should().BeGreaterThan(1e-2, "the parameters moved");
        }
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void CyclicLRDrivesMomentumToOneAndTheDropInKeepsMatching(bool fusedKernel)
    {
        var a = Fixtures.MakeParameters(Fixtures.Shapes);
        var b = Fixtures.Clone(a);
        using var ours = GenericSecondMomentOptimizer.TorchSgd(a, 0.01, momentum: 0.9);
        ours.FusedCpuKernel = fusedKernel;
        using var theirs = optim.SGD(b, 0.01, momentum: 0.9);
        var oursSchedule = optim.lr_scheduler.CyclicLR(ours, 0.001, 0.01, step_size_up: 5);
        var theirsSchedule = optim.lr_scheduler.CyclicLR(theirs, 0.001, 0.01, step_size_up: 5);
        double highest = 0;
        for (int step = 0; step < 20; step++) {
            double momentum = ((IMomentum)ours.ParamGroups.Single()).Momentum;
            momentum.Should().Be(((IMomentum)theirs.ParamGroups.Single()).Momentum);
            highest = Math.Max(highest, momentum);
            Fixtures.StepAll(step, (a, ours), (b, theirs));
            oursSchedule.step();
            theirsSchedule.step();
            Fixtures.MaxRelativeDifference(a, b).Should().BeLessThanOrEqualTo(1e-10, $"after step {step} (momentum {momentum})");
        }
        highest.Should().Be(1.0, "TorchSharp's CyclicLR reaches momentum 1 exactly");
    }

    [Fact]
    public void APaperPresetStillRefusesMomentumOneNamingMomentum()
    {
        var ps = Fixtures.MakeParameters(Fixtures.Shapes);
        var ex = FluentActions.Invoking(() => GenericSecondMomentOptimizer.HeavyBall(ps, 0.1, momentum: 1.0))
            .Should().Throw<ArgumentOutOfRangeException>().Which;
        ex.ParamName.Should().Be("momentum");
        ex.Message.Should().StartWith("momentum must lie in [0, 1)").And.NotContain("beta1");
    }
}
