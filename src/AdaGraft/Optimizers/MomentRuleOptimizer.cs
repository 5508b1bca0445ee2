using static TorchSharp.torch.optim;

namespace AdaGraft.Optimizers;

/// <summary>Options with moment coefficients β1 (momentum) and β2 that LR schedulers may cycle.</summary>
public interface IMomentOptions
{
    /// <summary>β1, the first-moment (momentum) coefficient.</summary>
    double? Beta1 { get; set; }

    /// <summary>β2, the second-moment coefficient (null where a rule schedules it itself, e.g. Adafactor).</summary>
    double? Beta2 { get; set; }
}

/// <summary>
/// A parameter group whose β1 and β2 schedulers can read and set (<see cref="IMomentum"/> is β1, <see cref="IBetas"/>
/// is (β1, β2)), written once for every rule with moments.
/// </summary>
/// <typeparam name="TOptions">The rule's options.</typeparam>
public class MomentParamGroup<TOptions> : ParamGroup<TOptions>, IMomentum, IBetas
    where TOptions : RuleOptions, IMomentOptions, new()
{
    /// <summary>An empty group (set <c>Parameters</c>).</summary>
    public MomentParamGroup() { }

    /// <summary>A group over <paramref name="parameters"/> with <paramref name="options"/> (null: all inherited).</summary>
    public MomentParamGroup(IEnumerable<Parameter> parameters, TOptions? options = null)
        : base(parameters, options ?? new TOptions()) { }

    /// <summary>β1 of this group.</summary>
    public double Momentum { get => Options.Beta1!.Value; set => Options.Beta1 = value; }

    /// <summary>(β1, β2) of this group.</summary>
    public (double, double) Betas {
        get => (Options.Beta1!.Value, Options.Beta2 ?? throw new InvalidOperationException($"{typeof(TOptions).Name}.Beta2 is not set (the rule schedules β2 itself)."));
        set { Options.Beta1 = value.Item1; Options.Beta2 = value.Item2; }
    }
}

/// <summary>
/// A rule optimizer whose rule is a type (<see cref="IRule{TOptions, TState}"/>): state creation and the proposal come
/// from <typeparamref name="TRule"/>, everything else (groups, validation, the step, checkpoints, grafting) from
/// <see cref="RuleOptimizer{TOptions, TState}"/>.
/// </summary>
/// <typeparam name="TOptions">The rule's options.</typeparam>
/// <typeparam name="TState">The rule's per-tensor state.</typeparam>
/// <typeparam name="TRule">The rule.</typeparam>
public abstract class RuleOptimizer<TOptions, TState, TRule> : RuleOptimizer<TOptions, TState>
    where TOptions : RuleOptions, new()
    where TState : RuleState
    where TRule : IRule<TOptions, TState>
{
    /// <summary>Builds the optimizer over <paramref name="groups"/>; unset options come from <paramref name="defaults"/>.</summary>
    protected RuleOptimizer(IEnumerable<ParamGroup<TOptions>> groups, TOptions defaults)
        : base(groups, defaults) { }

    /// <inheritdoc />
    protected sealed override TState CreateState(Parameter parameter, TOptions options) => TRule.NewState(parameter);

    /// <inheritdoc />
    protected sealed override Proposal Propose(TOptions options, TState state, Parameter parameter, Tensor grad) =>
        TRule.Propose(options, state, parameter, grad);
}

/// <summary>
/// A rule optimizer whose options have β1 and β2: the constructors, the group wrapping and the scheduler interfaces,
/// written once. A concrete optimizer adds only its presets.
/// </summary>
/// <typeparam name="TOptions">The rule's options.</typeparam>
/// <typeparam name="TState">The rule's per-tensor state.</typeparam>
/// <typeparam name="TRule">The rule.</typeparam>
/// <typeparam name="TGroup">The group type plain TorchSharp groups and parameter lists are wrapped in.</typeparam>
public abstract class MomentRuleOptimizer<TOptions, TState, TRule, TGroup> : RuleOptimizer<TOptions, TState, TRule>, IMomentum, IBetas
    where TOptions : RuleOptions, IMomentOptions, new()
    where TState : RuleState
    where TRule : IRule<TOptions, TState>
    where TGroup : MomentParamGroup<TOptions>, new()
{
    /// <summary>Creates the optimizer over <paramref name="parameters"/> with <paramref name="options"/> (every option must be set).</summary>
    protected MomentRuleOptimizer(IEnumerable<Parameter> parameters, TOptions options)
        : base(new[] { Group(NotNull(parameters), null) }, options) { }

    /// <summary>Creates the optimizer over parameter groups; unset group options come from <paramref name="defaults"/>.</summary>
    protected MomentRuleOptimizer(IEnumerable<MomentParamGroup<TOptions>> groups, TOptions defaults)
        : base(groups, defaults) { }

    private static TGroup Group(IEnumerable<Parameter> parameters, TOptions? options) =>
        new() { Parameters = parameters, Options = options ?? new TOptions() };

    private static IEnumerable<Parameter> NotNull(IEnumerable<Parameter> parameters)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        return parameters;
    }

    /// <summary>Default β1 (used by schedulers that cycle momentum).</summary>
    public double Momentum { get => Defaults.Beta1!.Value; set => Defaults.Beta1 = value; }

    /// <summary>Default (β1, β2).</summary>
    public (double, double) Betas {
        get => (Defaults.Beta1!.Value, Defaults.Beta2 ?? throw new InvalidOperationException($"{typeof(TOptions).Name}.Beta2 is not set (the rule schedules β2 itself)."));
        set { Defaults.Beta1 = value.Item1; Defaults.Beta2 = value.Item2; }
    }

    /// <summary>Adds a group; a plain TorchSharp group with these options (or none) is wrapped so schedulers can cycle its betas.</summary>
    public override void add_param_group(TorchSharp.Modules.ParamGroup param_group)
    {
        if (param_group is not null && param_group is not MomentParamGroup<TOptions> && param_group.Options is null or TOptions) {
            param_group = Group(param_group.Parameters ?? Enumerable.Empty<Parameter>(), (TOptions?)param_group.Options);
        }
        base.add_param_group(param_group!);
    }
}

/// <summary>
/// <see cref="MomentRuleOptimizer{TOptions, TState, TRule, TGroup}"/> whose groups are
/// <see cref="MomentParamGroup{TOptions}"/> (the zoo optimizers).
/// </summary>
/// <typeparam name="TOptions">The rule's options.</typeparam>
/// <typeparam name="TState">The rule's per-tensor state.</typeparam>
/// <typeparam name="TRule">The rule.</typeparam>
public abstract class MomentRuleOptimizer<TOptions, TState, TRule> : MomentRuleOptimizer<TOptions, TState, TRule, MomentParamGroup<TOptions>>
    where TOptions : RuleOptions, IMomentOptions, new()
    where TState : RuleState
    where TRule : IRule<TOptions, TState>
{
    /// <summary>Creates the optimizer over <paramref name="parameters"/> with <paramref name="options"/> (every option must be set).</summary>
    protected MomentRuleOptimizer(IEnumerable<Parameter> parameters, TOptions options) : base(parameters, options) { }

    /// <summary>Creates the optimizer over parameter groups; unset group options come from <paramref name="defaults"/>.</summary>
    protected MomentRuleOptimizer(IEnumerable<MomentParamGroup<TOptions>> groups, TOptions defaults) : base(groups, defaults) { }
}
