namespace AdaGraft.Rules;

/// <summary>
/// The parts of a step that several rules' <c>Propose</c> share, written once: the argument checks and the step count,
/// the effective gradient (maximize, L2 weight decay), Adam's two exponential averages, and the division by a root
/// with ε or, for ε = 0, the pseudoinverse.
/// </summary>
internal static class RuleSteps
{
    /// <summary>
    /// Checks the step's options and state (an <see cref="ArgumentNullException"/> naming <paramref name="o"/> or
    /// <paramref name="state"/>) and advances the step count; returns the new count t (1 at the first step).
    /// </summary>
    internal static long Begin(RuleOptions o, RuleState state)
    {
        Check(o, state);
        return ++state.Step;
    }

    /// <summary>
    /// <see cref="Begin(RuleOptions, RuleState)"/> for a rule that reads the parameter (norms, decay): the same checks,
    /// then one naming <paramref name="param"/>, then the step count.
    /// </summary>
    internal static long Begin(RuleOptions o, RuleState state, Tensor param)
    {
        Check(o, state);
        ArgumentNullException.ThrowIfNull(param);
        return ++state.Step;
    }

    /// <summary>
    /// <see cref="Begin(RuleOptions, RuleState, Tensor)"/> that also checks <paramref name="grad"/> before the step count.
    /// </summary>
    internal static long Begin(RuleOptions o, RuleState state, Tensor param, Tensor grad)
    {
        Check(o, state);
        ArgumentNullException.ThrowIfNull(param);
        ArgumentNullException.ThrowIfNull(grad);
        return ++state.Step;
    }

    /// <summary>
    /// The argument checks of <see cref="Begin(RuleOptions, RuleState)"/> alone, for rules that check more before they advance the step count:
    /// an <see cref="ArgumentNullException"/> naming <paramref name="o"/> or <paramref name="state"/>.
    /// </summary>
    internal static void Check(RuleOptions o, RuleState state)
    {
        ArgumentNullException.ThrowIfNull(o);
        ArgumentNullException.ThrowIfNull(state);
    }

    /// <summary>
    /// The gradient a rule averages: <c>±g + λ·w</c> (− when <paramref name="maximize"/>), written into scratch buffer
    /// <paramref name="scratch"/>; <paramref name="grad"/> itself (never modified) when there is neither.
    /// </summary>
    internal static Tensor Gradient(RuleState state, int scratch, Tensor grad, Tensor param, double weightDecay, bool maximize = false)
    {
        if (!maximize && weightDecay == 0) return grad;
        var g = state.Scratch(scratch).copy_(grad);
        if (maximize) g.neg_();
        if (weightDecay != 0) g.add_(param, weightDecay);
        return g;
    }

    /// <summary>Adam's averages in place: <c>m ← β1·m + (1−β1)·g</c> and <c>v ← β2·v + (1−β2)·g²</c>.</summary>
    internal static void UpdateMoments(Tensor m, Tensor v, Tensor g, double beta1, double beta2)
    {
        m.mul_(beta1).add_(g, 1 - beta1);
        v.mul_(beta2).addcmul_(g, g, 1 - beta2);
    }

    /// <summary>
    /// Adam's averages of the gradient with L2 decay <paramref name="weightDecay"/> (<see cref="Gradient"/>, in scratch
    /// buffer <paramref name="scratch"/>) in slots <paramref name="m"/> and <paramref name="v"/> (allocated on first use):
    /// returns both slots and that gradient.
    /// </summary>
    internal static (Tensor M, Tensor V, Tensor G) AdamMoments(RuleState state, int m, int v, int scratch, Tensor grad, Tensor param,
        double weightDecay, double beta1, double beta2)
    {
        var mt = state.Slot(m);
        var vt = state.Slot(v);
        var g = Gradient(state, scratch, grad, param, weightDecay);
        UpdateMoments(mt, vt, g, beta1, beta2);
        return (mt, vt, g);
    }

    /// <summary>
    /// The step <c>scale · numerator / (√v + ε·epsFactor)</c> with <paramref name="v"/> copied into scratch buffer
    /// <paramref name="scratch"/> (the divisor); with ε = 0 the pseudoinverse (a multiplier <c>1/√v</c>, 0 where v = 0).
    /// <paramref name="epsFactor"/> folds a bias correction into ε (<c>√bc2</c>); <paramref name="paramDecay"/> is the
    /// proposal's decoupled decay.
    /// </summary>
    internal static Proposal OverRoot(RuleState state, int scratch, Tensor v, Tensor numerator, double scale, double eps,
        double epsFactor = 1, double paramDecay = 0)
    {
        var d = state.Scratch(scratch).copy_(v);
        if (eps == 0) d.rsqrt_().nan_to_num_(0, 0, 0);
        else d.sqrt_().add_(eps * epsFactor);
        return SecondMomentRule.Preconditioned(numerator, d, eps == 0, scale, paramDecay);
    }
}
