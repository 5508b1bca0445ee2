namespace AdaGraft.Tests;

/// <summary>
/// The TorchSharp-compatible presets must reproduce TorchSharp's built-in optimizers: float64, 100 steps, several
/// tensor shapes, relative difference at most 1e-10 after every step.
/// </summary>
public class ParityTests
{
    public static readonly TheoryData<string> Cases = new() {
        "sgd", "sgd-momentum", "sgd-nesterov", "sgd-dampening", "sgd-weight-decay", "sgd-maximize",
        "adam", "adam-weight-decay", "adam-amsgrad", "adam-maximize-weight-decay", "adam-betas",
        "adamw", "adamw-amsgrad",
        "adagrad", "adagrad-lr-decay", "adagrad-weight-decay", "adagrad-initial-accumulator",
        "rmsprop", "rmsprop-momentum", "rmsprop-weight-decay", "rmsprop-maximize",
    };

    private static (optim.Optimizer ours, optim.Optimizer theirs) Make(string name, List<Parameter> a, List<Parameter> b) => name switch {
        "sgd" => (GenericSecondMomentOptimizer.TorchSgd(a, 0.05), optim.SGD(b, 0.05)),
        "sgd-momentum" => (GenericSecondMomentOptimizer.TorchSgd(a, 0.05, momentum: 0.9), optim.SGD(b, 0.05, momentum: 0.9)),
        "sgd-nesterov" => (GenericSecondMomentOptimizer.TorchSgd(a, 0.05, momentum: 0.9, nesterov: true), optim.SGD(b, 0.05, momentum: 0.9, nesterov: true)),
        "sgd-dampening" => (GenericSecondMomentOptimizer.TorchSgd(a, 0.05, momentum: 0.8, dampening: 0.3), optim.SGD(b, 0.05, momentum: 0.8, dampening: 0.3)),
        "sgd-weight-decay" => (GenericSecondMomentOptimizer.TorchSgd(a, 0.05, momentum: 0.9, weight_decay: 0.01), optim.SGD(b, 0.05, momentum: 0.9, weight_decay: 0.01)),
        "sgd-maximize" => (GenericSecondMomentOptimizer.TorchSgd(a, 0.05, momentum: 0.9, maximize: true), optim.SGD(b, 0.05, momentum: 0.9, maximize: true)),
        "adam" => (GenericSecondMomentOptimizer.TorchAdam(a), optim.Adam(b)),
        "adam-weight-decay" => (GenericSecondMomentOptimizer.TorchAdam(a, lr: 0.01, weight_decay: 0.05), optim.Adam(b, lr: 0.01, weight_decay: 0.05)),
        "adam-amsgrad" => (GenericSecondMomentOptimizer.TorchAdam(a, lr: 0.01, amsgrad: true), optim.Adam(b, lr: 0.01, amsgrad: true)),
        "adam-maximize-weight-decay" => (GenericSecondMomentOptimizer.TorchAdam(a, lr: 0.01, weight_decay: 0.05, maximize: true), optim.Adam(b, lr: 0.01, weight_decay: 0.05, maximize: true)),
        "adam-betas" => (GenericSecondMomentOptimizer.TorchAdam(a, lr: 0.02, beta1: 0.5, beta2: 0.9, eps: 1e-3), optim.Adam(b, lr: 0.02, beta1: 0.5, beta2: 0.9, eps: 1e-3)),
        "adamw" => (GenericSecondMomentOptimizer.TorchAdamW(a, lr: 0.01, weight_decay: 0.1), optim.AdamW(b, lr: 0.01, weight_decay: 0.1)),
        "adamw-amsgrad" => (GenericSecondMomentOptimizer.TorchAdamW(a, lr: 0.01, weight_decay: 0.1, amsgrad: true), optim.AdamW(b, lr: 0.01, weight_decay: 0.1, amsgrad: true)),
        "adagrad" => (GenericSecondMomentOptimizer.TorchAdagrad(a), optim.Adagrad(b)),
        "adagrad-lr-decay" => (GenericSecondMomentOptimizer.TorchAdagrad(a, lr: 0.1, lr_decay: 0.01), optim.Adagrad(b, lr: 0.1, lr_decay: 0.01)),
        "adagrad-weight-decay" => (GenericSecondMomentOptimizer.TorchAdagrad(a, lr: 0.1, weight_decay: 0.05), optim.Adagrad(b, lr: 0.1, weight_decay: 0.05)),
        "adagrad-initial-accumulator" => (GenericSecondMomentOptimizer.TorchAdagrad(a, lr: 0.1, initial_accumulator_value: 0.5, eps: 1e-6), optim.Adagrad(b, lr: 0.1, initial_accumulator_value: 0.5, eps: 1e-6)),
        "rmsprop" => (GenericSecondMomentOptimizer.TorchRmsProp(a), optim.RMSProp(b)),
        "rmsprop-momentum" => (GenericSecondMomentOptimizer.TorchRmsProp(a, lr: 0.01, momentum: 0.9), optim.RMSProp(b, lr: 0.01, momentum: 0.9)),
        "rmsprop-weight-decay" => (GenericSecondMomentOptimizer.TorchRmsProp(a, lr: 0.01, alpha: 0.9, weight_decay: 0.05), optim.RMSProp(b, lr: 0.01, alpha: 0.9, weight_decay: 0.05)),
        "rmsprop-maximize" => (GenericSecondMomentOptimizer.TorchRmsProp(a, lr: 0.01, momentum: 0.5, maximize: true), optim.RMSProp(b, lr: 0.01, momentum: 0.5, maximize: true)),
        _ => throw new ArgumentOutOfRangeException(nameof(name), name, "unknown case"),
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void PresetMatchesTorchSharpBuiltInOver100Steps(string name) => AssertParity(name, fused: true);

    /// <summary>The eager path (what CUDA and half precision run) against the same built-ins, on CPU.</summary>
    [Theory]
    [MemberData(nameof(Cases))]
    public void EagerPresetMatchesTorchSharpBuiltInOver100Steps(string name) => AssertParity(name, fused: false);

    private static void AssertParity(string name, bool fused)
    {
        var a = Fixtures.MakeParameters(Fixtures.Shapes);
        var b = Fixtures.Clone(a);
        var (ours, theirs) = Make(name, a, b);
        var generic = (GenericSecondMomentOptimizer)ours;
        generic.FusedCpuKernel = fused;
        using (ours)
        using (theirs) {
            double worst = Fixtures.WorstDivergence(ours, a, theirs, b, steps: 100);
            worst.Should().BeLessThanOrEqualTo(1e-10, $"{name} must reproduce TorchSharp's built-in");
            generic.FusedTensorSteps.Should().Be(fused ? 100 * Fixtures.Shapes.Length : 0);
            // The parameters must actually have moved (a test that cannot fail is worth nothing).
            Fixtures.MaxRelativeDifference(a, Fixtures.MakeParameters(Fixtures.Shapes)).Should().BeGreaterThan(1e-3);
        }
    }
}
