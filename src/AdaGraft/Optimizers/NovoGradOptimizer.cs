using System;
using System.Collections.Generic;
using AdaGraft.Rules;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.optim;

namespace AdaGraft.Optimizers;

/// <summary>
/// NovoGrad (Ginsburg et al., 2019, "Stochastic Gradient Methods with Layer-wise Adaptive Moments for Training of Deep Networks") as a TorchSharp optimizer; see <see cref="NovoGradRule"/> for the update. Build it with <see cref="Create"/>.
/// Usable standalone and inside closed-form grafting.
/// </summary>
public sealed class NovoGradOptimizer : RuleOptimizer<NovoGradOptions, NovoGradState>, IBetas
{
    /// <summary>A parameter group with its own options; unset options inherit the optimizer's.</summary>
    public sealed class ParamGroup : ParamGroup<NovoGradOptions>, IBetas
    {
        /// <summary>An empty group (set <c>Parameters</c>).</summary>
        public ParamGroup() { }

        /// <summary>A group over <paramref name="parameters"/> with <paramref name="options"/> (null: all inherited).</summary>
        public ParamGroup(IEnumerable<Parameter> parameters, NovoGradOptions? options = null)
            : base(parameters, options ?? new NovoGradOptions()) { }

        /// <summary>(β1, β2) of this group.</summary>
        public (double, double) Betas {
            get => (Options.Beta1!.Value, Options.Beta2!.Value);
            set { Options.Beta1 = value.Item1; Options.Beta2 = value.Item2; }
        }
    }

    /// <summary>Creates the optimizer over <paramref name="parameters"/> with <paramref name="options"/> (every option must be set).</summary>
    public NovoGradOptimizer(IEnumerable<Parameter> parameters, NovoGradOptions options)
        : this(new[] { new ParamGroup(Checked(parameters)) }, options) { }

    /// <summary>Creates the optimizer over parameter groups; unset group options come from <paramref name="defaults"/>.</summary>
    public NovoGradOptimizer(IEnumerable<ParamGroup> groups, NovoGradOptions defaults)
        : base(groups, defaults) { }

    private static IEnumerable<Parameter> Checked(IEnumerable<Parameter> parameters)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        return parameters;
    }

    /// <summary>Default (β1, β2).</summary>
    public (double, double) Betas {
        get => (Defaults.Beta1!.Value, Defaults.Beta2!.Value);
        set { Defaults.Beta1 = value.Item1; Defaults.Beta2 = value.Item2; }
    }

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

    /// <inheritdoc />
    protected override NovoGradState CreateState(Parameter parameter, NovoGradOptions options) => new(parameter);

    /// <inheritdoc />
    protected override Proposal Propose(NovoGradOptions options, NovoGradState state, Parameter parameter, Tensor grad) =>
        NovoGradRule.Propose(options, state, parameter, grad);

    /// <summary>Adds a group; accepts <see cref="ParamGroup"/> or any group with <see cref="NovoGradOptions"/>.</summary>
    public override void add_param_group(TorchSharp.Modules.ParamGroup param_group)
    {
        if (param_group is not null && param_group is not ParamGroup && param_group.Options is null or NovoGradOptions) {
            param_group = new ParamGroup(param_group.Parameters, (NovoGradOptions?)param_group.Options);
        }
        base.add_param_group(param_group!);
    }
}
