namespace AdaGraft.Optimizers;

/// <summary>
/// The part of <see cref="IProposingOptimizer.ValidateForStep"/> a graft cannot do for its children: their options and
/// their states' fit (the graft checks the gradients and shared memory once, for both).
/// </summary>
internal interface IStateValidator
{
    /// <summary>
    /// Validates the options and the state of every parameter that has a gradient (<paramref name="withGradient"/>: their
    /// handles, from the gradients the graft read for this step); changes nothing.
    /// </summary>
    void ValidateOptionsAndStates(IReadOnlySet<IntPtr> withGradient);
}

/// <summary>
/// An optimizer that can propose a step for one tensor without applying it. The closed-form grafting path
/// asks two of these for proposals and combines them itself.
/// </summary>
public interface IProposingOptimizer
{
    /// <summary>
    /// Advances this optimizer's state for <paramref name="parameter"/> with <paramref name="grad"/> and returns
    /// the step it would take, without changing the parameter. Must be called inside <c>torch.no_grad()</c>.
    /// </summary>
    Proposal Propose(Parameter parameter, Tensor grad);

    /// <summary>Validates hyperparameters and gradients before a step (throws before anything changes).</summary>
    void ValidateForStep();
}

/// <summary>An optimizer that can compare a checkpoint's algorithm with its own before loading it (used by grafts).</summary>
internal interface IAlgorithmCheck
{
    /// <summary>The algorithm differences between the saved optimizer in <paramref name="reader"/> (header and options only) and this one.</summary>
    List<string> CheckpointSwitchDifferences(BinaryReader reader);

    /// <summary>The algorithm differences between saved group options and this optimizer's groups.</summary>
    List<string> SwitchDifferences(IReadOnlyList<OptimizerOptions> saved);
}

/// <summary>A proposing optimizer whose per-tensor state can be backed up and restored on the device.</summary>
internal interface IGuardedProposer
{
    RuleState GuardStateOf(Parameter parameter);

    void UseAppliedSteps(bool on);
}

/// <summary>Device-side finiteness checks shared by the optimizers that can skip non-finite steps.</summary>
internal static class NonFinite
{
    /// <summary>A 0-d bool tensor: true when every gradient is finite. No host synchronisation.</summary>
    public static Tensor AllFinite(IEnumerable<Tensor> grads)
    {
        // A float64 sum of a float32/float16 tensor cannot overflow, so it is finite exactly when every element is.
        var flags = grads.Select(g => g.sum(ScalarType.Float64).isfinite().view(1)).ToArray();
        return torch.cat(flags, 0).all();
    }

    /// <summary>Throws unless every parameter is on one device (needed to combine flags without a host copy).</summary>
    public static void RequireOneDevice(IEnumerable<Parameter> ps)
    {
        var devices = ps.Select(p => (p.device_type, p.device_index)).Distinct().ToList();
        if (devices.Count > 1)
            throw new NotSupportedException("SkipNonFiniteSteps needs all parameters on one device (the skip is decided on the device without a host synchronisation).");
    }
}
