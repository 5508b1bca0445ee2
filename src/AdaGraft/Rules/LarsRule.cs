namespace AdaGraft.Rules;

/// <summary>Hyperparameters of <see cref="LarsRule"/> (one parameter group). Unset values inherit the optimizer's defaults.</summary>
public sealed class LarsOptions : RuleOptions
{
    /// <summary>Heavy-ball momentum μ in [0, 1).</summary>
    public double? Momentum { get; set; }

    /// <summary>Weight decay λ ≥ 0 (coupled: <c>g + λ·w</c>, and in the local learning rate's denominator).</summary>
    public double? WeightDecay { get; set; }

    /// <summary>The trust coefficient (the paper's η; 0.001 there), &gt; 0.</summary>
    public double? TrustCoefficient { get; set; }

    /// <inheritdoc />
    public override void Validate()
    {
        ValidateLearningRate();
        RequireInRange(Momentum, 0, 1, hiOpen: true, "momentum", "use e.g. 0.9 (0 for none).");
        RequireAtLeast(WeightDecay, 0, "weight_decay", "use 0 for none or e.g. 5e-4.");
        RequireAtLeast(TrustCoefficient, 0, "trust_coefficient", "use e.g. 0.001.");
        if (TrustCoefficient == 0)
            throw new ArgumentOutOfRangeException("trust_coefficient", 0.0, "trust_coefficient must be positive; use e.g. 0.001.");
    }
}

/// <summary>Per-tensor state of LARS: slot m (the momentum buffer).</summary>
public sealed class LarsState : RuleState
{
    internal const int M = 0;
    internal const int Scaled = 0;

    /// <summary>Creates the state of <paramref name="parameter"/>.</summary>
    public LarsState(Parameter parameter) : base(parameter, new[] { "m" }, 1)
    {
    }

    /// <summary>The momentum buffer, or null when there is no momentum.</summary>
    public Tensor? MomentumBuffer => GetSlot(M);

    /// <inheritdoc />
    public override void Initialize(OptimizerOptions options)
    {
        if (Restart<LarsOptions>(options).Momentum is > 0) EnsureSlot(M);
    }
}

/// <summary>
/// LARS, layer-wise adaptive rate scaling (You, Gitman and Ginsburg, 2017, "Large Batch Training of Convolutional
/// Networks", Algorithm 1): SGD with heavy-ball momentum whose gradient is rescaled per tensor by a local learning
/// rate proportional to ‖w‖ / ‖g‖.
/// </summary>
/// <remarks>
/// <code>
/// q ← trust · ‖w‖ / (‖g‖ + λ·‖w‖),  or 1 when ‖w‖ = 0 or ‖g‖ = 0          (per tensor)
/// m ← μ·m + q·(g + λ·w)                                                    (heavy ball on the scaled gradient)
/// w ← w − η·m
/// </code>
/// The paper writes <c>v ← μ·v + γ·q·(g + λ·w); w ← w − v</c>, the same for a constant η = γ; keeping η outside
/// the buffer lets LR schedulers act on the step as they do for SGD. The norms and q stay on the device (0-d tensors).
/// </remarks>
public sealed class LarsRule : IRule<LarsOptions, LarsState>
{
    private LarsRule() { }

    /// <inheritdoc />
    public static LarsState NewState(Parameter parameter) => new(parameter);

    /// <summary>Advances <paramref name="state"/> with <paramref name="grad"/> and returns the step for <paramref name="param"/>.</summary>
    public static Proposal Propose(LarsOptions o, LarsState state, Tensor param, Tensor grad)
    {
        RuleSteps.Begin(o, state, param);
        double lr = o.LearningRate!.Value, mu = o.Momentum!.Value, wd = o.WeightDecay!.Value, trust = o.TrustCoefficient!.Value;

        var wNorm = param.norm();
        var gNorm = grad.norm();
        var ok = wNorm.gt(0).logical_and_(gNorm.gt(0));
        var denominator = wd == 0 ? gNorm : gNorm.add(wNorm, wd);
        var q = torch.where(ok, wNorm.mul(trust).div_(denominator), torch.ones_like(wNorm));

        var g = RuleSteps.Gradient(state, LarsState.Scaled, grad, param, wd);
        if (mu == 0) return new Proposal(g, -lr) { ScaleTensor = q };
        var m = state.Slot(LarsState.M);
        m.mul_(mu).addcmul_(g, q, 1);
        return new Proposal(m, -lr);
    }
}
