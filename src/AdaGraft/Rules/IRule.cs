namespace AdaGraft.Rules;

/// <summary>
/// An update rule as a type: how to create a tensor's state and how to propose its step. A rule optimizer built on
/// <see cref="Optimizers.RuleOptimizer{TOptions, TState, TRule}"/> needs nothing else to be a TorchSharp optimizer
/// (groups, schedulers, checkpoints, validation) and a child of closed-form and black-box grafts.
/// </summary>
/// <typeparam name="TOptions">The rule's hyperparameters (one parameter group).</typeparam>
/// <typeparam name="TState">The rule's per-tensor state.</typeparam>
public interface IRule<TOptions, TState>
    where TState : RuleState
{
    /// <summary>The state of <paramref name="parameter"/> before its first step.</summary>
    static abstract TState NewState(Parameter parameter);

    /// <summary>Advances <paramref name="state"/> with <paramref name="grad"/> and returns the step for <paramref name="param"/> (not applied).</summary>
    static abstract Proposal Propose(TOptions options, TState state, Tensor param, Tensor grad);
}
