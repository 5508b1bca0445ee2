namespace AdaGraft.Rules;

/// <summary>
/// Hyperparameters of <see cref="NovoGradRule"/> (one parameter group). Unset values inherit the optimizer's defaults.
/// β2 (in [0, 1]) decays the per-tensor second moment; ε is added to <c>√v</c> (0: a tensor with v = 0 gets no gradient
/// term); the weight decay is added to the normalised gradient inside the momentum.
/// </summary>
public sealed class NovoGradOptions : AdaptiveOptions
{
    /// <inheritdoc />
    public override void Validate() => ValidateAdaptive("use e.g. 0.95 (0 for no momentum).", "use e.g. 0.98.",
        "use e.g. 1e-8 or 0 for the pseudoinverse.", "use 0 for none or e.g. 1e-3.", beta2Closed: true);
}

/// <summary>Per-tensor state of NovoGrad: slots m (shaped like the parameter) and v (a 0-d scalar).</summary>
public sealed class NovoGradState : RuleState
{
    internal const int M = 0, V = 1;

    /// <summary>Creates the state of <paramref name="parameter"/>.</summary>
    public NovoGradState(Parameter parameter) : base(parameter, new[] { "m", "v" }, 0)
    {
    }

    /// <summary>The momentum buffer, or null before it was allocated.</summary>
    public Tensor? FirstMoment => GetSlot(M);

    /// <summary>The per-tensor second moment (0-d), or null before it was allocated.</summary>
    public Tensor? SecondMoment => GetSlot(V);

    /// <inheritdoc />
    protected override bool SlotsShapedLikeParameter => false;

    /// <inheritdoc />
    protected override long[] ExpectedSlotShape(int index) => index == V ? Array.Empty<long>() : base.ExpectedSlotShape(index);

    internal Tensor Moment() => EnsureSlot(M);

    internal Tensor Second() => EnsureSlot(V);
}

/// <summary>
/// NovoGrad (Ginsburg, Castonguay, Hrinchuk, Kuchaiev, Lavrukhin, Leary, Li, Nguyen, Zhang and Cohen, 2019,
/// "Stochastic Gradient Methods with Layer-wise Adaptive Moments for Training of Deep Networks", Algorithm 1):
/// momentum of gradients normalised by a per-tensor (layer-wise) second moment, with weight decay added after the
/// normalisation.
/// </summary>
/// <remarks>
/// <code>
/// v ← ‖g‖²                          at the first step
/// v ← β2·v + (1−β2)·‖g‖²            afterwards                     (v is one scalar per tensor)
/// m ← β1·m + (g / (√v + ε) + λ·w)   (m = 0 before the first step)
/// w ← w − η·m
/// </code>
/// v and 1/(√v + ε) stay on the device as 0-d tensors (no host synchronisation); with ε = 0 the reciprocal of
/// √v = 0 is taken as 0. v has the parameter's dtype: for float16 parameters ‖g‖² overflows above 65504.
/// </remarks>
public sealed class NovoGradRule : IRule<NovoGradOptions, NovoGradState>
{
    private NovoGradRule() { }

    /// <inheritdoc />
    public static NovoGradState NewState(Parameter parameter) => new(parameter);

    /// <summary>Advances <paramref name="state"/> with <paramref name="grad"/> and returns the step for <paramref name="param"/>.</summary>
    public static Proposal Propose(NovoGradOptions o, NovoGradState state, Tensor param, Tensor grad)
    {
        long t = RuleSteps.Begin(o, state);
        double lr = o.LearningRate!.Value, beta1 = o.Beta1!.Value, beta2 = o.Beta2!.Value;
        double eps = o.Epsilon!.Value, wd = o.WeightDecay!.Value;

        var v = state.Second();
        var gNorm = grad.norm();
        if (t == 1) v.copy_(gNorm.mul_(gNorm));
        else v.mul_(beta2).addcmul_(gNorm, gNorm, 1 - beta2);

        var inverse = v.sqrt();
        if (eps != 0) inverse.add_(eps);
        inverse.reciprocal_();
        if (eps == 0) inverse.nan_to_num_(0, 0, 0);

        var m = state.Moment();
        m.mul_(beta1).addcmul_(grad, inverse, 1);
        if (wd != 0) m.add_(param, wd);
        return new Proposal(m, -lr);
    }
}
