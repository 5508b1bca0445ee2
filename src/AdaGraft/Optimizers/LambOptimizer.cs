using System;
using System.Collections.Generic;
using AdaGraft.Rules;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.optim;

namespace AdaGraft.Optimizers;

/// <summary>
/// LAMB (You et al., 2019, "Large Batch Optimization for Deep Learning: Training BERT in 76 minutes") as a TorchSharp optimizer; see <see cref="LambRule"/> for the update. Build it with <c>Create</c>.
/// Usable standalone and inside closed-form grafting.
/// </summary>
public sealed class LambOptimizer : MomentRuleOptimizer<LambOptions, LambState, LambOptimizer.ParamGroup>
{
    /// <summary>A parameter group with its own options; unset options inherit the optimizer's.</summary>
    public sealed class ParamGroup : MomentParamGroup<LambOptions>
    {
        /// <summary>An empty group (set <c>Parameters</c>).</summary>
        public ParamGroup() { }

        /// <summary>A group over <paramref name="parameters"/> with <paramref name="options"/> (null: all inherited).</summary>
        public ParamGroup(IEnumerable<Parameter> parameters, LambOptions? options = null) : base(parameters, options) { }
    }

    /// <summary>Creates the optimizer over <paramref name="parameters"/> with <paramref name="options"/> (every option must be set).</summary>
    public LambOptimizer(IEnumerable<Parameter> parameters, LambOptions options)
        : base(parameters, options) { }

    /// <summary>Creates the optimizer over parameter groups; unset group options come from <paramref name="defaults"/>.</summary>
    public LambOptimizer(IEnumerable<ParamGroup> groups, LambOptions defaults)
        : base(groups, defaults) { }



    /// <summary>Options with every hyperparameter set.</summary>
    public static LambOptions DefaultOptions(double lr = 1e-3, double beta1 = 0.9, double beta2 = 0.999, double eps = 1e-6, double weight_decay = 0.01, bool bias_correction = true) => new() {
        LearningRate = lr,
        Beta1 = beta1,
        Beta2 = beta2,
        Epsilon = eps,
        WeightDecay = weight_decay,
        BiasCorrection = bias_correction,
    };

    /// <summary>
    /// LAMB with PyTorch-style arguments; defaults as in the paper's BERT experiments (λ = 0.01) and the common
    /// implementations (ε = 1e-6, bias correction on).
    /// </summary>
    public static LambOptimizer Create(IEnumerable<Parameter> parameters, double lr = 1e-3, double beta1 = 0.9, double beta2 = 0.999, double eps = 1e-6, double weight_decay = 0.01, bool bias_correction = true)
        => new(parameters, DefaultOptions(lr, beta1, beta2, eps, weight_decay, bias_correction));

    /// <summary>The same preset over parameter groups: unset group options take these arguments.</summary>
    public static LambOptimizer Create(IEnumerable<ParamGroup> parameters, double lr = 1e-3, double beta1 = 0.9, double beta2 = 0.999, double eps = 1e-6, double weight_decay = 0.01, bool bias_correction = true)
        => new(parameters, DefaultOptions(lr, beta1, beta2, eps, weight_decay, bias_correction));

    /// <inheritdoc />
    protected override LambState CreateState(Parameter parameter, LambOptions options) => new(parameter);

    /// <inheritdoc />
    protected override Proposal Propose(LambOptions options, LambState state, Parameter parameter, Tensor grad) =>
        LambRule.Propose(options, state, parameter, grad);

}
