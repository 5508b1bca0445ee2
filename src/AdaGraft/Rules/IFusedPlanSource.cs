namespace AdaGraft.Rules;

/// <summary>
/// What the fused closed-form graft needs from a child: whether its side of a tensor's step can run in the fused CPU
/// kernel, the step's plan (host constants and state pointers), and the state whose slots the kernel writes. Grafting
/// asks children for this contract, never for a concrete optimizer type; a child without it takes the eager paths.
/// </summary>
internal interface IFusedPlanSource
{
    /// <summary>True when this child's side of <paramref name="parameter"/>'s step can be fused for <paramref name="dtype"/> (changes nothing).</summary>
    bool CanFuseState(Parameter parameter, torch.ScalarType dtype);

    /// <summary>Advances <paramref name="parameter"/>'s step counter and returns its plan (only after <see cref="CanFuseState"/>).</summary>
    FusedPlan Plan(Parameter parameter);

    /// <summary>The state of <paramref name="parameter"/> (to advance the version counters of what the kernel wrote).</summary>
    RuleState StateOf(Parameter parameter);
}
