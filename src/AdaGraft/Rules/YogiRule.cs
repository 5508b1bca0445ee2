namespace AdaGraft.Rules;

/// <summary>
/// Hyperparameters of <see cref="YogiRule"/> (one parameter group). Unset values inherit the optimizer's defaults. β2
/// is the rate of the additive second-moment update.
/// </summary>
public sealed class YogiOptions : MomentOptions
{
    /// <summary>ε ≥ 0 added to <c>√v̂</c>; 0 means the pseudoinverse (a coordinate with <c>v = 0</c> does not move).</summary>
    public double? Epsilon { get; set; }

    /// <summary>Initial value v0 of the second-moment accumulator, ≥ 0 (Algorithm 2 of the paper: 0).</summary>
    public double? InitialAccumulator { get; set; }

    /// <inheritdoc />
    public override void Validate()
    {
        ValidateBetas("use e.g. 0.9 (0 for no momentum).", "use e.g. 0.999; 1 would never change v and makes the bias correction divide by 0.");
        RequireAtLeast(Epsilon, 0, "eps", "use e.g. 1e-3 (the paper's choice) or 0 for the pseudoinverse.");
        RequireAtLeast(InitialAccumulator, 0, "initial_accumulator_value", "use 0 or a small positive value such as 1e-6.");
    }
}

/// <summary>Per-tensor state of Yogi: slots m (first moment) and v (second moment).</summary>
public sealed class YogiState : RuleState
{
    internal const int M = 0, V = 1;
    internal const int Squared = 0, Denominator = 1;

    /// <summary>Creates the state of <paramref name="parameter"/>.</summary>
    public YogiState(Parameter parameter) : base(parameter, new[] { "m", "v" }, 2)
    {
    }

    /// <summary>The first moment, or null before it was allocated.</summary>
    public Tensor? FirstMoment => GetSlot(M);

    /// <summary>The second moment, or null before it was allocated.</summary>
    public Tensor? SecondMoment => GetSlot(V);

    /// <inheritdoc />
    public override void Initialize(OptimizerOptions options)
    {
        var o = Restart<YogiOptions>(options);
        EnsureSlot(M);
        EnsureSlot(V, o.InitialAccumulator ?? 0);
    }
}

/// <summary>
/// Yogi (Zaheer, Reddi, Sachan, Kale and Kumar, 2018, "Adaptive Methods for Nonconvex Optimization", NeurIPS,
/// Algorithm 2): Adam whose second moment moves by an additive, sign-controlled step instead of a multiplicative one,
/// so that it cannot grow or shrink too fast.
/// </summary>
/// <remarks>
/// <code>
/// m ← β1·m + (1−β1)·g
/// v ← v − (1−β2)·sign(v − g²)·g²
/// m̂ = m / (1−β1^t),  v̂ = v / (1−β2^t)                (Adam's bias correction)
/// w ← w − η · m̂ / (√v̂ + ε)                          (ε = 0: pseudoinverse, 0 where v = 0)
/// </code>
/// The bias correction is folded into the scale: <c>m̂/(√v̂ + ε) = (√bc2/bc1)·m/(√v + ε·√bc2)</c>.
/// All updates are in place on preallocated state.
/// </remarks>
public sealed class YogiRule : IRule<YogiOptions, YogiState>
{
    private YogiRule() { }

    /// <inheritdoc />
    public static YogiState NewState(Parameter parameter) => new(parameter);

    /// <summary>Advances <paramref name="state"/> with <paramref name="grad"/> and returns the step for <paramref name="param"/>.</summary>
    public static Proposal Propose(YogiOptions o, YogiState state, Tensor param, Tensor grad)
    {
        long t = RuleSteps.Begin(o, state);
        double lr = o.LearningRate!.Value, beta1 = o.Beta1!.Value, beta2 = o.Beta2!.Value, eps = o.Epsilon!.Value;

        var m = state.Slot(YogiState.M);
        m.mul_(beta1).add_(grad, 1 - beta1);

        var v = state.Slot(YogiState.V, o.InitialAccumulator!.Value);
        var g2 = state.Scratch(YogiState.Squared).copy_(grad).mul_(grad);
        var sign = state.Scratch(YogiState.Denominator).copy_(v).sub_(g2).sign_();
        v.addcmul_(sign, g2, -(1 - beta2));

        var (bc1, bc2) = SecondMomentRule.HostBias(t, beta1, beta2);
        double sqrtBc2 = Math.Sqrt(bc2);
        return RuleSteps.OverRoot(state, YogiState.Denominator, v, m, -lr * sqrtBc2 / bc1, eps, sqrtBc2);
    }
}
