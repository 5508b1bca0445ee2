namespace AdaGraft.Rules;

/// <summary>Where ε enters the denominator.</summary>
public enum EpsilonPlacement
{
    /// <summary><c>√m2 + ε</c> (PyTorch's Adam, RMSprop, Adagrad).</summary>
    OutsideRoot = 0,

    /// <summary><c>√(m2 + ε)</c> (the paper's Algorithm 1).</summary>
    InsideRoot = 1,
}

/// <summary>Where the first moment (momentum) is accumulated.</summary>
public enum MomentumPlacement
{
    /// <summary>Momentum of raw gradients, then preconditioned: <c>m1 / √m2</c> (Algorithm 1, Adam).</summary>
    BeforePreconditioner = 0,

    /// <summary>Momentum of preconditioned gradients: <c>m1 ← β1·m1 + g/√m2</c> (PyTorch's RMSprop).</summary>
    AfterPreconditioner = 1,
}

/// <summary>
/// Hyperparameters of Algorithm 1 (one parameter group). Unset values inherit the optimizer's defaults.
/// </summary>
public sealed class SecondMomentOptions : RuleOptions, Optimizers.IMomentOptions
{
    /// <summary>β1, the momentum (heavy-ball) coefficient, ≥ 0; below 1 with Adam's scaling or bias correction.</summary>
    public double? Beta1 { get; set; }

    /// <summary>β2, the second-moment decay, ≥ 0 (below 1 with bias correction); 1 is AdaGrad's non-decaying accumulator.</summary>
    public double? Beta2 { get; set; }

    /// <summary>False: no denominator at all (SGD, heavy ball). True: divide by <c>√m2</c>.</summary>
    public bool? Preconditioned { get; set; }

    /// <summary>ε ≥ 0. 0 (the paper's choice) means the pseudoinverse: a coordinate with <c>m2 = 0</c> does not move.</summary>
    public double? Epsilon { get; set; }

    /// <summary>Where ε enters the denominator.</summary>
    public EpsilonPlacement? EpsilonPlacement { get; set; }

    /// <summary>Adam's convention <c>m1 ← β1·m1 + (1−β1)·g</c>.</summary>
    public bool? ScaleFirstMoment { get; set; }

    /// <summary>Adam's and RMSprop's convention <c>m2 ← β2·m2 + (1−β2)·g²</c>.</summary>
    public bool? ScaleSecondMoment { get; set; }

    /// <summary>Adam's bias correction: the step is multiplied by <c>√(1−β2^t) / (1−β1^t)</c>.</summary>
    public bool? BiasCorrection { get; set; }

    /// <summary>Weight decay λ ≥ 0: coupled L2 (<c>g ← g + λ·w</c>) or decoupled (see <see cref="DecoupledWeightDecay"/>).</summary>
    public double? WeightDecay { get; set; }

    /// <summary>AdamW's decoupled decay: <c>w ← w − η·λ·w</c>, outside the preconditioner.</summary>
    public bool? DecoupledWeightDecay { get; set; }

    /// <summary>Ascend the objective instead of descending it.</summary>
    public bool? Maximize { get; set; }

    /// <summary>Nesterov momentum: the step uses <c>g + β1·m1</c> instead of <c>m1</c>.</summary>
    public bool? Nesterov { get; set; }

    /// <summary>SGD's dampening d (any finite number, as in TorchSharp; usually in [0, 1]): <c>m1 ← β1·m1 + (1−d)·g</c> after the first step.</summary>
    public double? Dampening { get; set; }

    /// <summary>Initial value of the second-moment accumulator (AdaGrad's initial_accumulator_value), ≥ 0.</summary>
    public double? InitialAccumulator { get; set; }

    /// <summary>AMSGrad: divide by the running maximum of m2.</summary>
    public bool? AmsGrad { get; set; }

    /// <summary>Whether momentum is taken of raw or of preconditioned gradients.</summary>
    public MomentumPlacement? MomentumPlacement { get; set; }

    /// <summary>AdaGrad's learning-rate decay: <c>η_t = η / (1 + (t−1)·decay)</c>, ≥ 0.</summary>
    public double? LearningRateDecay { get; set; }

    /// <inheritdoc />
    /// <remarks>
    /// The ranges are what the update can compute, so that every value TorchSharp's built-ins accept is accepted:
    /// β1 ≥ 0 (SGD's and RMSprop's momentum 1 included, which TorchSharp's <c>CyclicLR</c> reaches), below 1 only where
    /// Adam's (1−β1) scaling or bias correction divides by 1−β1^t; β2 ≥ 0, below 1 under bias correction; any finite
    /// dampening. The paper's presets check their own, stricter ranges when they are built.
    /// </remarks>
    public override void Validate()
    {
        ValidateLearningRate();
        bool adamFirst = ScaleFirstMoment == true || BiasCorrection == true;
        if (adamFirst)
            RequireInRange(Beta1, 0, 1, hiOpen: true, Arg("beta1"), "Adam's (1−β1) scaling and bias correction need β1 < 1; use e.g. 0.9.");
        else
            RequireAtLeast(Beta1, 0, Arg("beta1"), "use 0 for no momentum or e.g. 0.9.");
        if (BiasCorrection == true)
            RequireInRange(Beta2, 0, 1, hiOpen: true, Arg("beta2"), "bias correction needs β2 < 1; use e.g. 0.999.");
        else
            RequireAtLeast(Beta2, 0, Arg("beta2"), "use 1 for AdaGrad's accumulator or e.g. 0.999.");
        RequireAtLeast(Epsilon, 0, Arg("eps"), "use 0 for the pseudoinverse or a small positive value such as 1e-8.");
        RequireAtLeast(WeightDecay, 0, Arg("weight_decay"), "use 0 for none.");
        if (Dampening is double d && !double.IsFinite(d))
            throw new ArgumentOutOfRangeException(Arg("dampening"), d, $"{Arg("dampening")} must be a finite number; use 0 for none.");
        RequireAtLeast(InitialAccumulator, 0, Arg("initial_accumulator_value"), "use 0 or a positive value.");
        RequireAtLeast(LearningRateDecay, 0, Arg("lr_decay"), "use 0 for none.");
        if (Nesterov == true && (Beta1 is not > 0 || Dampening is not (null or 0)))
            throw new ArgumentException($"Nesterov momentum needs {Arg("beta1")} > 0 and {Arg("dampening")} = 0; set a momentum or turn {Arg("nesterov")} off.", Arg("nesterov"));
        if (ScaleFirstMoment == true && Dampening is not (null or 0))
            throw new ArgumentException($"{Arg("dampening")} and ScaleFirstMoment both scale the gradient in m1; use one of them.", Arg("dampening"));
        if (Preconditioned == false && AmsGrad == true)
            throw new ArgumentException($"AmsGrad needs a second moment; set Preconditioned = true or {Arg("amsgrad")} = false.", Arg("amsgrad"));
        if (Preconditioned == false && MomentumPlacement == Rules.MomentumPlacement.AfterPreconditioner)
            throw new ArgumentException("MomentumPlacement.AfterPreconditioner needs a second moment; set Preconditioned = true.", "momentum_placement");
    }
}

/// <summary>Per-tensor state of Algorithm 1: slots m1, m2 and (AMSGrad) the running maximum of m2.</summary>
public sealed class SecondMomentState : RuleState
{
    internal const int M1 = 0, M2 = 1, MaxM2 = 2;
    internal const int Denominator = 0, Gradient = 1, Lookahead = 2;

    /// <summary>Creates the state of <paramref name="parameter"/>.</summary>
    public SecondMomentState(Parameter parameter) : base(parameter, new[] { "m1", "m2", "max_m2" }, 3)
    {
    }

    /// <summary>The first moment (momentum buffer), or null before the first step with momentum.</summary>
    public Tensor? FirstMoment => GetSlot(M1);

    /// <summary>The second-moment accumulator, or null for unpreconditioned forms.</summary>
    public Tensor? SecondMoment => GetSlot(M2);

    /// <summary>The running maximum of m2 (AMSGrad), or null.</summary>
    public Tensor? MaxSecondMoment => GetSlot(MaxM2);

    /// <inheritdoc />
    public override void Initialize(OptimizerOptions options)
    {
        var o = Restart<SecondMomentOptions>(options);
        if (o.Preconditioned == true) {
            EnsureSlot(M2, o.InitialAccumulator ?? 0);
            if (o.AmsGrad == true) EnsureSlot(MaxM2);
        }
        if (o.Beta1 is > 0) EnsureSlot(M1);
    }
}

/// <summary>
/// Algorithm 1 of Agarwal et al. (2020), "Disentangling Adaptive Gradient Methods from Learning Rates": the generic
/// second-moment optimizer that covers SGD, heavy ball, AdaGrad, RMSprop and Adam as one rule.
/// </summary>
/// <remarks>
/// <code>
/// g  ← ∇f(w) (+ λ·w if coupled decay; negated if maximize)
/// m1 ← β1·m1 + c1·g            c1 = 1−β1 if ScaleFirstMoment, 1−dampening after the first step, else 1
/// m2 ← β2·m2 + c2·g²           c2 = 1−β2 if ScaleSecondMoment, else 1   (only when Preconditioned)
/// v  ← max(v, m2) if AmsGrad else m2
/// w  ← w − η_t · s_t · m1 / D(v) (− η_t·λ·w if decoupled)
///      D(v) = √v + ε (OutsideRoot) or √(v + ε) (InsideRoot); with ε = 0, 1/D is the pseudoinverse (0 where v = 0)
///      s_t = √(1−β2^t) / (1−β1^t) with BiasCorrection, else 1
///      η_t = η / (1 + (t−1)·lr_decay)
/// </code>
/// All updates are in place on preallocated state; the proposal is applied by the caller in one fused pass.
/// </remarks>
public sealed class SecondMomentRule : IRule<SecondMomentOptions, SecondMomentState>
{
    private SecondMomentRule() { }

    /// <inheritdoc />
    public static SecondMomentState NewState(Parameter parameter) => new(parameter);

    /// <summary>Advances <paramref name="state"/> with <paramref name="grad"/> and returns the step for <paramref name="param"/>.</summary>
    public static Proposal Propose(SecondMomentOptions o, SecondMomentState state, Tensor param, Tensor grad)
    {
        // Bias correction: host factors from the step count (folded into the constants), or device factors from the
        // applied-step count when non-finite steps are skipped on the device (then a skipped step must leave no trace in t).
        bool deviceBias = o.BiasCorrection!.Value && state.AppliedSteps is not null;
        var k = Constants(o, state, hostBias: !deviceBias);

        // The effective gradient; p.grad itself is never modified.
        var g = RuleSteps.Gradient(state, SecondMomentState.Gradient, grad, param, k.Coupled ? k.WeightDecay : 0, k.Maximize);

        Tensor? bc1T = null, bc2T = null;
        if (deviceBias) {
            var tNext = (state.AppliedSteps! + 1).clamp_min_(1);
            if (k.HasM1) bc1T = tNext.mul(Math.Log(k.Beta1)).exp_().neg_().add_(1);
            bc2T = tNext.mul(Math.Log(k.Beta2)).exp_().neg_().add_(1);
        }

        if (!k.Preconditioned) {
            var num = FirstMoment(o, state, g, k.Beta1, k.C1);
            return new Proposal(num, k.Scale, paramDecay: k.Decay) { ScaleTensor = bc1T?.reciprocal() };
        }

        // Second moment and the (pseudo)inverse denominator, with bias correction folded into ε and the scale (see
        // Constants); with device factors, ε is the bare ε and the factors multiply it here.
        var m2 = state.Slot(SecondMomentState.M2, o.InitialAccumulator!.Value);
        if (!k.Beta2IsOne) m2.mul_(k.Beta2);
        m2.addcmul_(g, g, k.C2);
        var v = m2;
        if (k.AmsGrad) {
            v = state.Slot(SecondMomentState.MaxM2);
            v.clamp_(min: m2);
        }
        var sqrtBc2T = bc2T?.sqrt();
        var d = state.Scratch(SecondMomentState.Denominator).copy_(v);
        if (k.PseudoInverse) {
            // 1/√v with +∞ (v = 0) replaced by 0: the Moore–Penrose pseudoinverse of √v.
            d.rsqrt_().nan_to_num_(0, 0, 0);
        } else if (k.EpsInside) {
            if (bc2T is null) d.add_(k.EpsTerm);
            else d.add_(bc2T * k.EpsTerm);
            d.sqrt_();
        } else {
            d.sqrt_();
            if (sqrtBc2T is null) d.add_(k.EpsTerm);
            else d.add_(sqrtBc2T * k.EpsTerm);
        }

        if (k.AfterPreconditioner) {
            // m1 accumulates g·√bc2/D(v): fold √bc2 into the preconditioner first when it lives on the device.
            if (sqrtBc2T is not null) {
                if (k.PseudoInverse) d.mul_(sqrtBc2T);
                else d.div_(sqrtBc2T);
            }
            if (!k.HasM1) return Preconditioned(g, d, k.PseudoInverse, k.Scale, k.Decay, bc1T?.reciprocal());
            var buf = state.Slot(SecondMomentState.M1);
            buf.mul_(k.Beta1);
            if (k.PseudoInverse) buf.addcmul_(g, d, k.MomentumFold);
            else buf.addcdiv_(g, d, k.MomentumFold);
            return new Proposal(buf, k.Scale, paramDecay: k.Decay) { ScaleTensor = bc1T?.reciprocal() };
        }

        var numerator = FirstMoment(o, state, g, k.Beta1, k.C1);
        Tensor? scaleT = sqrtBc2T is null ? bc1T?.reciprocal() : bc1T is null ? sqrtBc2T : sqrtBc2T / bc1T;
        return Preconditioned(numerator, d, k.PseudoInverse, k.Scale, k.Decay, scaleT);
    }

    /// <summary>The host-side coefficients of the next step; advances the step counter.</summary>
    private static (long t, double lr, double beta1, double beta2, double wd, bool decoupled, double paramDecay, double c1) Advance(
        SecondMomentOptions o, SecondMomentState state)
    {
        long t = ++state.Step;
        double lr = o.LearningRate!.Value / (1 + (t - 1) * o.LearningRateDecay!.Value);
        double beta1 = o.Beta1!.Value, beta2 = o.Beta2!.Value, wd = o.WeightDecay!.Value;
        bool decoupled = o.DecoupledWeightDecay!.Value;
        double paramDecay = decoupled && wd != 0 ? -lr * wd : 0;
        double c1 = o.ScaleFirstMoment!.Value ? 1 - beta1
            : o.Dampening!.Value != 0 && t == 1 ? 1
            : 1 - o.Dampening!.Value;
        return (t, lr, beta1, beta2, wd, decoupled, paramDecay, c1);
    }

    internal static (double bc1, double bc2) HostBias(long t, double beta1, double beta2) =>
        (beta1 > 0 ? 1 - Math.Pow(beta1, t) : 1, 1 - Math.Pow(beta2, t));

    /// <summary>
    /// Algorithm 1's hyperparameter semantics for the next step, in the one place both forms read them: the eager
    /// <see cref="Propose"/> and the SIMD kernel (<see cref="Plan"/>). Advances the step counter. Which conventions apply
    /// (maximize, coupled or decoupled decay, momentum, Nesterov, preconditioning, AMSGrad, ε placement and the
    /// pseudoinverse, momentum placement) and the folded constants: bias correction goes into ε and the scale,
    /// <c>√(v/bc2) + ε = (√v + ε·√bc2)/√bc2</c> and <c>√(v/bc2 + ε) = √(v + ε·bc2)/√bc2</c>, so it costs no pass over
    /// memory. Without <paramref name="hostBias"/> (device-side step counts) the bias factors are left at 1 for the
    /// caller to apply as tensors.
    /// </summary>
    internal static FusedPlan Constants(SecondMomentOptions o, SecondMomentState state, bool hostBias = true)
    {
        var (t, lr, beta1, beta2, wd, decoupled, paramDecay, c1) = Advance(o, state);
        var (bc1, bc2) = o.BiasCorrection!.Value && hostBias ? HostBias(t, beta1, beta2) : (1, 1);
        var p = new FusedPlan {
            Maximize = o.Maximize!.Value,
            Coupled = wd != 0 && !decoupled,
            WeightDecay = wd,
            HasDecay = paramDecay != 0,
            Decay = paramDecay,
            HasM1 = beta1 > 0,
            Beta1 = beta1,
            C1 = c1,
            Nesterov = o.Nesterov!.Value,
            NesterovGrad = o.ScaleFirstMoment!.Value ? 1 - beta1 : 1,
            Beta2 = beta2,
        };
        if (!o.Preconditioned!.Value) {
            p.Scale = -lr / bc1;
            return p;
        }
        p.Preconditioned = true;
        p.Beta2IsOne = beta2 == 1;
        p.C2 = o.ScaleSecondMoment!.Value ? 1 - beta2 : 1;
        p.AmsGrad = o.AmsGrad!.Value;
        double eps = o.Epsilon!.Value, sqrtBc2 = Math.Sqrt(bc2);
        p.PseudoInverse = eps == 0;
        p.EpsInside = o.EpsilonPlacement == EpsilonPlacement.InsideRoot;
        p.EpsTerm = p.EpsInside ? eps * bc2 : eps * sqrtBc2;
        p.Scale = -lr * sqrtBc2 / bc1;
        if (o.MomentumPlacement == MomentumPlacement.AfterPreconditioner) {
            p.AfterPreconditioner = true;
            p.Nesterov = false;
            if (p.HasM1) {
                p.MomentumFold = c1 * sqrtBc2;
                p.Scale = -lr / bc1;
            }
        }
        return p;
    }

    /// <summary>
    /// The fused kernel's form of <see cref="Propose"/>: <see cref="Constants"/> plus the addresses of the slots the
    /// step needs (allocated here; only after <see cref="FusedRules.CanFuse"/> said yes).
    /// </summary>
    internal static FusedPlan Plan(SecondMomentOptions o, SecondMomentState state)
    {
        var p = Constants(o, state);
        if (p.HasM1) p.M1 = state.SlotAddress(SecondMomentState.M1);
        if (p.Preconditioned) p.M2 = state.SlotAddress(SecondMomentState.M2, o.InitialAccumulator!.Value);
        if (p.AmsGrad) p.VMax = state.SlotAddress(SecondMomentState.MaxM2);
        return p;
    }

    internal static Proposal Preconditioned(Tensor num, Tensor d, bool pseudoInverse, double scale, double paramDecay, Tensor? scaleTensor = null) =>
        pseudoInverse
            ? new Proposal(num, scale, multiplier: d, paramDecay: paramDecay) { ScaleTensor = scaleTensor }
            : new Proposal(num, scale, divisor: d, paramDecay: paramDecay) { ScaleTensor = scaleTensor };

    private static Tensor FirstMoment(SecondMomentOptions o, SecondMomentState state, Tensor g, double beta1, double c1)
    {
        if (beta1 == 0) return g;
        var m1 = state.Slot(SecondMomentState.M1);
        m1.mul_(beta1).add_(g, c1);
        if (!o.Nesterov!.Value) return m1;
        // Nesterov: g' = c·g + β1·m1 (c = 1−β1 under Adam's scaling, else 1).
        var look = state.Scratch(SecondMomentState.Lookahead).copy_(g);
        if (o.ScaleFirstMoment!.Value) look.mul_(1 - beta1);
        return look.add_(m1, beta1);
    }
}
