namespace AdaGraft.Rules;

/// <summary>
/// Hyperparameters of <see cref="LambRule"/> (one parameter group). Unset values inherit the optimizer's defaults. ε is
/// added to <c>√v̂</c> (0: the pseudoinverse, 0 where v = 0); the weight decay is decoupled, added to the Adam
/// direction before the trust ratio is taken.
/// </summary>
public sealed class LambOptions : AdaptiveOptions
{
    /// <summary>Adam's bias correction of m and v (Algorithm 2 of the paper: on).</summary>
    public bool? BiasCorrection { get; set; }

    /// <inheritdoc />
    public override void Validate() => ValidateAdaptive(epsFix: "use e.g. 1e-6 or 0 for the pseudoinverse.", decayFix: "use 0 for none or e.g. 0.01.");
}

/// <summary>Per-tensor state of LAMB: slots m and v (Adam's moments).</summary>
public sealed class LambState : RuleState
{
    internal const int M = 0, V = 1;
    internal const int Direction = 0;

    /// <summary>Creates the state of <paramref name="parameter"/>.</summary>
    public LambState(Parameter parameter) : base(parameter, new[] { "m", "v" }, 1)
    {
    }

    /// <summary>The first moment, or null before it was allocated.</summary>
    public Tensor? FirstMoment => GetSlot(M);

    /// <summary>The second moment, or null before it was allocated.</summary>
    public Tensor? SecondMoment => GetSlot(V);
}

/// <summary>
/// LAMB (You, Li, Reddi, Hseu, Kumar, Bhojanapalli, Song, Demmel, Keutzer and Hsieh, 2019, "Large Batch Optimization
/// for Deep Learning: Training BERT in 76 minutes", Algorithm 2): Adam's direction plus decoupled weight decay,
/// rescaled per tensor by the trust ratio ‖w‖ / ‖r + λ·w‖.
/// </summary>
/// <remarks>
/// <code>
/// m ← β1·m + (1−β1)·g
/// v ← β2·v + (1−β2)·g²
/// r ← m̂ / (√v̂ + ε)          m̂ = m/(1−β1^t), v̂ = v/(1−β2^t) with BiasCorrection, else m, v
/// u ← r + λ·w
/// w ← w − η · φ · u          φ = ‖w‖ / ‖u‖, or 1 when ‖w‖ = 0 or ‖u‖ = 0   (per tensor)
/// </code>
/// The norms and φ stay on the device as 0-d tensors (no host synchronisation). Bias correction is folded in:
/// with c = √bc2/bc1, u = c·u′ where u′ = m/(√v + ε√bc2) + (λ/c)·w, so φ·u = (‖w‖/‖u′‖)·u′, or c·u′ when φ = 1.
/// </remarks>
public sealed class LambRule : IRule<LambOptions, LambState>
{
    private LambRule() { }

    /// <inheritdoc />
    public static LambState NewState(Parameter parameter) => new(parameter);

    /// <summary>Advances <paramref name="state"/> with <paramref name="grad"/> and returns the step for <paramref name="param"/>.</summary>
    public static Proposal Propose(LambOptions o, LambState state, Tensor param, Tensor grad)
    {
        long t = RuleSteps.Begin(o, state, param);
        double lr = o.LearningRate!.Value, beta1 = o.Beta1!.Value, beta2 = o.Beta2!.Value;
        double eps = o.Epsilon!.Value, wd = o.WeightDecay!.Value;
        bool bias = o.BiasCorrection!.Value;

        var m = state.Slot(LambState.M);
        var v = state.Slot(LambState.V);
        RuleSteps.UpdateMoments(m, v, grad, beta1, beta2);

        double bc1 = bias ? 1 - Math.Pow(beta1, t) : 1;
        double sqrtBc2 = bias ? Math.Sqrt(1 - Math.Pow(beta2, t)) : 1;
        double c = sqrtBc2 / bc1;

        // u′ = m/(√v + ε√bc2) + (λ/c)·w, in one scratch buffer.
        var u = state.Scratch(LambState.Direction).copy_(v);
        if (eps == 0) u.rsqrt_().nan_to_num_(0, 0, 0);
        else u.sqrt_().add_(eps * sqrtBc2).reciprocal_();
        u.mul_(m);
        if (wd != 0) u.add_(param, wd / c);

        // φ·c: ‖w‖/‖u′‖ where both norms are positive, else c (the unscaled step).
        var wNorm = param.norm();
        var uNorm = u.norm();
        var ok = wNorm.gt(0).logical_and_(uNorm.gt(0));
        var ratio = torch.where(ok, wNorm.div(uNorm), torch.ones_like(wNorm).mul_(c));
        return new Proposal(u, -lr) { ScaleTensor = ratio };
    }
}
