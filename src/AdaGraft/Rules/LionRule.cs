namespace AdaGraft.Rules;

/// <summary>
/// Hyperparameters of <see cref="LionRule"/> (one parameter group). Unset values inherit the optimizer's defaults. β1
/// is the interpolation between momentum and gradient that is signed for the update, β2 the decay of the momentum
/// buffer, both in [0, 1].
/// </summary>
public sealed class LionOptions : MomentOptions
{
    /// <summary>Decoupled weight decay λ ≥ 0: <c>w ← w − η·λ·w</c>.</summary>
    public double? WeightDecay { get; set; }

    /// <inheritdoc />
    public override void Validate()
    {
        ValidateBetas(beta2Fix: "use e.g. 0.99.", beta1Closed: true, beta2Closed: true);
        RequireAtLeast(WeightDecay, 0, "weight_decay", "use 0 for none.");
    }
}

/// <summary>Per-tensor state of Lion: slot m (the momentum buffer).</summary>
public sealed class LionState : RuleState
{
    internal const int M = 0;
    internal const int Update = 0;

    /// <summary>Creates the state of <paramref name="parameter"/>.</summary>
    public LionState(Parameter parameter) : base(parameter, new[] { "m" }, 1)
    {
    }

    /// <summary>The momentum buffer, or null before it was allocated.</summary>
    public Tensor? Momentum => GetSlot(M);
}

/// <summary>
/// Lion, "EvoLved Sign Momentum" (Chen, Liang, Huang, Real, Wang, Pham, Dong, Luong, Hsieh, Lu and Le, 2023,
/// "Symbolic Discovery of Optimization Algorithms", Algorithm 2): every coordinate moves by ±η, the sign of an
/// interpolation between momentum and gradient, plus decoupled weight decay.
/// </summary>
/// <remarks>
/// <code>
/// u ← sign(β1·m + (1−β1)·g)
/// w ← w − η·(u + λ·w)
/// m ← β2·m + (1−β2)·g
/// </code>
/// sign(0) = 0: a coordinate whose interpolation is exactly 0 does not move (apart from the decay).
/// </remarks>
public sealed class LionRule : IRule<LionOptions, LionState>
{
    private LionRule() { }

    /// <inheritdoc />
    public static LionState NewState(Parameter parameter) => new(parameter);

    /// <summary>Advances <paramref name="state"/> with <paramref name="grad"/> and returns the step for <paramref name="param"/>.</summary>
    public static Proposal Propose(LionOptions o, LionState state, Tensor param, Tensor grad)
    {
        RuleSteps.Begin(o, state);
        double lr = o.LearningRate!.Value, beta1 = o.Beta1!.Value, beta2 = o.Beta2!.Value, wd = o.WeightDecay!.Value;
        var m = state.Slot(LionState.M);
        var u = state.Scratch(LionState.Update).copy_(m).mul_(beta1).add_(grad, 1 - beta1).sign_();
        m.mul_(beta2).add_(grad, 1 - beta2);
        return new Proposal(u, -lr, paramDecay: -lr * wd);
    }
}
