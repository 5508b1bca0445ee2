using System;
using System.Collections.Generic;
using AdaGraft.Rules;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.optim;

namespace AdaGraft.Optimizers;

/// <summary>
/// Lion (Chen et al., 2023, "Symbolic Discovery of Optimization Algorithms") as a TorchSharp optimizer; see <see cref="LionRule"/> for the update. Build it with <c>Create</c>.
/// Usable standalone and inside closed-form grafting.
/// </summary>
public sealed class LionOptimizer : MomentRuleOptimizer<LionOptions, LionState, LionOptimizer.ParamGroup>
{
    /// <summary>A parameter group with its own options; unset options inherit the optimizer's.</summary>
    public sealed class ParamGroup : MomentParamGroup<LionOptions>
    {
        /// <summary>An empty group (set <c>Parameters</c>).</summary>
        public ParamGroup() { }

        /// <summary>A group over <paramref name="parameters"/> with <paramref name="options"/> (null: all inherited).</summary>
        public ParamGroup(IEnumerable<Parameter> parameters, LionOptions? options = null) : base(parameters, options) { }
    }

    /// <summary>Creates the optimizer over <paramref name="parameters"/> with <paramref name="options"/> (every option must be set).</summary>
    public LionOptimizer(IEnumerable<Parameter> parameters, LionOptions options)
        : base(parameters, options) { }

    /// <summary>Creates the optimizer over parameter groups; unset group options come from <paramref name="defaults"/>.</summary>
    public LionOptimizer(IEnumerable<ParamGroup> groups, LionOptions defaults)
        : base(groups, defaults) { }



    /// <summary>Options with every hyperparameter set.</summary>
    public static LionOptions DefaultOptions(double lr = 1e-4, double beta1 = 0.9, double beta2 = 0.99, double weight_decay = 0) => new() {
        LearningRate = lr,
        Beta1 = beta1,
        Beta2 = beta2,
        WeightDecay = weight_decay,
    };

    /// <summary>
    /// Lion with PyTorch-style arguments and the paper's defaults (β1 = 0.9, β2 = 0.99). Lion's steps have unit
    /// size per coordinate: use a learning rate 3–10× smaller than AdamW's and a weight decay 3–10× larger.
    /// </summary>
    public static LionOptimizer Create(IEnumerable<Parameter> parameters, double lr = 1e-4, double beta1 = 0.9, double beta2 = 0.99, double weight_decay = 0)
        => new(parameters, DefaultOptions(lr, beta1, beta2, weight_decay));

    /// <summary>The same preset over parameter groups: unset group options take these arguments.</summary>
    public static LionOptimizer Create(IEnumerable<ParamGroup> parameters, double lr = 1e-4, double beta1 = 0.9, double beta2 = 0.99, double weight_decay = 0)
        => new(parameters, DefaultOptions(lr, beta1, beta2, weight_decay));

    /// <inheritdoc />
    protected override LionState CreateState(Parameter parameter, LionOptions options) => new(parameter);

    /// <inheritdoc />
    protected override Proposal Propose(LionOptions options, LionState state, Parameter parameter, Tensor grad) =>
        LionRule.Propose(options, state, parameter, grad);

}
