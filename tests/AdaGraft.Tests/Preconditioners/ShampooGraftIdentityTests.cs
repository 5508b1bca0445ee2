using AdaGraft.Rules;

namespace AdaGraft.Tests.Preconditioners;

/// <summary>
/// Graft-only identity (distributed_shampoo's <c>shampoo_grafting_test.py</c> idea): with
/// <c>start_preconditioning_step = long.MaxValue</c> Shampoo never preconditions, so it is its grafting method plus its
/// momentum and weight decay, and must equal TorchSharp's built-in of that configuration: 1e-10 relative over 20
/// float64 steps, on a vector, a matrix, a 3-d tensor and a scalar.
/// </summary>
public sealed class ShampooGraftIdentityTests
{
    private const long Never = long.MaxValue;

    private static readonly Dictionary<string, (Func<IList<Parameter>, optim.Optimizer> Shampoo, Func<IList<Parameter>, optim.Optimizer> BuiltIn)> Cases = new() {
        ["adagrad"] = (ps => ShampooOptimizer.Create(ps, lr: 0.1, start_preconditioning_step: Never),
            ps => optim.Adagrad(ps, lr: 0.1)),
        ["adagrad-l2"] = (ps => ShampooOptimizer.Create(ps, lr: 0.1, weight_decay: 0.05, use_decoupled_weight_decay: false, start_preconditioning_step: Never),
            ps => optim.Adagrad(ps, lr: 0.1, weight_decay: 0.05)),
        ["adam"] = (ps => ShampooOptimizer.Create(ps, lr: 0.01, beta1: 0.9, start_preconditioning_step: Never, grafting: ShampooGrafting.Adam, grafting_epsilon: 1e-8, grafting_beta2: 0.999),
            ps => optim.Adam(ps, lr: 0.01, beta1: 0.9, beta2: 0.999, eps: 1e-8)),
        ["adam-l2"] = (ps => ShampooOptimizer.Create(ps, lr: 0.01, beta1: 0.8, weight_decay: 0.05, use_decoupled_weight_decay: false, start_preconditioning_step: Never, grafting: ShampooGrafting.Adam, grafting_epsilon: 1e-6, grafting_beta2: 0.99),
            ps => optim.Adam(ps, lr: 0.01, beta1: 0.8, beta2: 0.99, eps: 1e-6, weight_decay: 0.05)),
        ["adamw"] = (ps => ShampooOptimizer.Create(ps, lr: 0.01, beta1: 0.9, weight_decay: 0.1, start_preconditioning_step: Never, grafting: ShampooGrafting.Adam, grafting_epsilon: 1e-8, grafting_beta2: 0.999),
            ps => optim.AdamW(ps, lr: 0.01, beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 0.1)),
        ["rmsprop"] = (ps => ShampooOptimizer.Create(ps, lr: 0.01, start_preconditioning_step: Never, grafting: ShampooGrafting.RmsProp, grafting_epsilon: 1e-8, grafting_beta2: 0.99),
            ps => optim.RMSProp(ps, lr: 0.01, alpha: 0.99, eps: 1e-8)),
        ["rmsprop-momentum"] = (ps => ShampooOptimizer.Create(ps, lr: 0.01, momentum: 0.9, start_preconditioning_step: Never, grafting: ShampooGrafting.RmsProp, grafting_epsilon: 1e-8, grafting_beta2: 0.9),
            ps => optim.RMSProp(ps, lr: 0.01, alpha: 0.9, eps: 1e-8, momentum: 0.9)),
        ["sgd"] = (ps => ShampooOptimizer.Create(ps, lr: 0.05, start_preconditioning_step: Never, grafting: ShampooGrafting.Sgd),
            ps => optim.SGD(ps, 0.05)),
        ["sgd-momentum-l2"] = (ps => ShampooOptimizer.Create(ps, lr: 0.05, momentum: 0.9, weight_decay: 0.01, use_decoupled_weight_decay: false, start_preconditioning_step: Never, grafting: ShampooGrafting.Sgd),
            ps => optim.SGD(ps, 0.05, momentum: 0.9, weight_decay: 0.01)),
        ["sgd-nesterov"] = (ps => ShampooOptimizer.Create(ps, lr: 0.05, momentum: 0.9, nesterov: true, start_preconditioning_step: Never, grafting: ShampooGrafting.Sgd),
            ps => optim.SGD(ps, 0.05, momentum: 0.9, nesterov: true)),
    };

    public static TheoryData<string> Names => new(Cases.Keys);

    [Theory]
    [MemberData(nameof(Names))]
    public void NeverPreconditionedShampooEqualsTheBuiltIn(string name) =>
        GraftHarness.Divergence(ps => Cases[name].Shampoo(ps), ps => Cases[name].BuiltIn(ps), 20).Should().BeLessThanOrEqualTo(1e-10);

    /// <summary>
    /// The same run with roots from step 1 leaves the built-in, so the identity above is not vacuous: [3, 5] and
    /// [2, 3, 4] (merged into [2, 12]) are preconditioned.
    /// </summary>
    [Fact]
    public void PreconditionedShampooDiffersFromItsGraftingMethod() =>
        GraftHarness.Divergence(ps => ShampooOptimizer.Create(ps, lr: 0.1), ps => optim.Adagrad(ps, lr: 0.1), 5).Should().BeGreaterThan(1e-3);
}
