using System;
using System.Collections.Generic;
using AdaGraft.Rules;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.optim;

namespace AdaGraft.Optimizers;

/// <summary>
/// NovoGrad (Ginsburg et al., 2019, "Stochastic Gradient Methods with Layer-wise Adaptive Moments for Training of Deep Networks") as a TorchSharp optimizer; see <see cref="NovoGradRule"/> for the update. Build it with <c>Create</c>.
/// Usable standalone and inside closed-form grafting.
/// </summary>
public sealed class NovoGradOptimizer : MomentRuleOptimizer<NovoGradOptions, NovoGradState, NovoGradOptimizer.ParamGroup>
{
    /// <summary>A parameter group with its own options; unset options inherit the optimizer's.</summary>
    public sealed class ParamGroup : MomentParamGroup<NovoGradOptions>
    {
        /// <summary>An empty group (set <c>Parameters</c>).</summary>
        public ParamGroup() { }

        /// <summary>A group over <paramref name="parameters"/> with <paramref name="options"/> (null: all inherited).</summary>
        public ParamGroup(IEnumerable<Parameter> parameters, NovoGradOptions? options = null) : base(parameters, options) { }
    }

    /// <summary>Creates the optimizer over <paramref name="parameters"/> with <paramref name="options"/> (every option must be set).</summary>
    public NovoGradOptimizer(IEnumerable<Parameter> parameters, NovoGradOptions options)
        : base(parameters, options) { }

    /// <summary>Creates the optimizer over parameter groups; unset group options come from <paramref name="defaults"/>.</summary>
    public NovoGradOptimizer(IEnumerable<ParamGroup> groups, NovoGradOptions defaults)
        : base(groups, defaults) { }



    /// <summary>Options with every hyperparameter set.</summary>
    public static NovoGradOptions DefaultOptions(double lr = 1e-3, double beta1 = 0.95, double beta2 = 0.98, double eps = 1e-8, double weight_decay = 0) => new() {
        LearningRate = lr,
        Beta1 = beta1,
        Beta2 = beta2,
        Epsilon = eps,
        WeightDecay = weight_decay,
    };

    /// <summary>
    /// NovoGrad with PyTorch-style arguments and the paper's defaults (β1 = 0.95, β2 = 0.98).
    /// </summary>
    public static NovoGradOptimizer Create(IEnumerable<Parameter> parameters, double lr = 1e-3, double beta1 = 0.95, double beta2 = 0.98, double eps = 1e-8, double weight_decay = 0)
        => new(parameters, DefaultOptions(lr, beta1, beta2, eps, weight_decay));

    /// <summary>The same preset over parameter groups: unset group options take these arguments.</summary>
    public static NovoGradOptimizer Create(IEnumerable<ParamGroup> parameters, double lr = 1e-3, double beta1 = 0.95, double beta2 = 0.98, double eps = 1e-8, double weight_decay = 0)
        => new(parameters, DefaultOptions(lr, beta1, beta2, eps, weight_decay));

    /// <inheritdoc />
    protected override NovoGradState CreateState(Parameter parameter, NovoGradOptions options) => new(parameter);

    /// <inheritdoc />
    protected override Proposal Propose(NovoGradOptions options, NovoGradState state, Parameter parameter, Tensor grad) =>
        NovoGradRule.Propose(options, state, parameter, grad);

}
