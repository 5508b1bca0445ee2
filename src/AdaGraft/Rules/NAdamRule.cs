using System.Numerics;

namespace AdaGraft.Rules;

/// <summary>
/// Hyperparameters of <see cref="NAdamRule"/> (one parameter group). Unset values inherit the optimizer's defaults. ε
/// is added to <c>√v̂</c>; the weight decay is L2, added to the gradient (<c>g ← g + λ·w</c>), as TorchSharp's NAdam
/// does.
/// </summary>
public sealed class NAdamOptions : AdaptiveOptions
{
    /// <summary>ψ ≥ 0, the momentum decay of the schedule <c>μ_t = β1·(1 − ½·0.96^(t·ψ))</c>.</summary>
    public double? MomentumDecay { get; set; }

    /// <inheritdoc />
    public override void Validate()
    {
        ValidateAdaptive(beta2Fix: "use e.g. 0.999; 1 would make the bias correction divide by 0.");
        RequireAtLeast(MomentumDecay, 0, "momentum_decay", "use e.g. 0.004 (TorchSharp's default).");
    }
}

/// <summary>Per-tensor state of NAdam: slots exp_avg (m) and exp_avg_sq (v), and the running product of μ (a host number).</summary>
public sealed class NAdamState : RuleState
{
    internal const int M = 0, V = 1;
    internal const int Numerator = 0, Denominator = 1;

    /// <summary>Creates the state of <paramref name="parameter"/>.</summary>
    public NAdamState(Parameter parameter) : base(parameter, new[] { "exp_avg", "exp_avg_sq" }, 2, hostValueCount: 1)
    {
    }

    /// <summary>The first moment, or null before it was allocated.</summary>
    public Tensor? FirstMoment => GetSlot(M);

    /// <summary>The second moment, or null before it was allocated.</summary>
    public Tensor? SecondMoment => GetSlot(V);

    /// <summary>The product μ_1·…·μ_t of the momentum schedule so far (1 before the first step).</summary>
    public double MuProduct { get => HostValues[0]; internal set => HostValues[0] = value; }

    /// <inheritdoc />
    public override void Initialize(OptimizerOptions options)
    {
        base.Initialize(options);
        MuProduct = 1;
    }
}

/// <summary>The host constants of one NAdam step (see <see cref="NAdamRule"/>).</summary>
internal struct NAdamPlan
{
    public double WeightDecay, Beta1, Beta2, GradCoefficient, MomentCoefficient, EpsTerm, Scale;
}

/// <summary>
/// NAdam (Dozat, 2016, "Incorporating Nesterov Momentum into Adam") as TorchSharp's <c>torch.optim.NAdam</c> computes
/// it: Adam whose step mixes the gradient and the first moment with a warming momentum schedule.
/// </summary>
/// <remarks>
/// <code>
/// g ← g + λ·w                                       (L2 weight decay)
/// μ_t = β1·(1 − ½·0.96^(t·ψ)),  μ_{t+1} likewise;    Π_t = Π_{t−1}·μ_t  (Π_0 = 1, kept per tensor)
/// m ← β1·m + (1−β1)·g;   v ← β2·v + (1−β2)·g²
/// w ← w − η·[(1−μ_t)/(1−Π_t)·g + μ_{t+1}/(1−Π_t·μ_{t+1})·m] / (√(v/(1−β2^t)) + ε)
/// </code>
/// The bias correction is folded into the scale: <c>1/(√(v/bc2) + ε) = √bc2/(√v + ε·√bc2)</c>. ε = 0 is the
/// pseudoinverse (0 where v = 0).
/// </remarks>
public sealed class NAdamRule : IRule<NAdamOptions, NAdamState>
{
    private NAdamRule() { }

    /// <inheritdoc />
    public static NAdamState NewState(Parameter parameter) => new(parameter);

    /// <summary>Advances <paramref name="state"/> with <paramref name="grad"/> and returns the step for <paramref name="param"/>.</summary>
    public static Proposal Propose(NAdamOptions o, NAdamState state, Tensor param, Tensor grad)
    {
        ArgumentNullException.ThrowIfNull(o);
        ArgumentNullException.ThrowIfNull(state);
        var c = Advance(o, state);
        var m = state.Slot(NAdamState.M);
        var v = state.Slot(NAdamState.V);
        var n = state.Scratch(NAdamState.Numerator).copy_(grad);
        if (c.WeightDecay != 0) n.add_(param, c.WeightDecay);
        m.mul_(c.Beta1).add_(n, 1 - c.Beta1);
        v.mul_(c.Beta2).addcmul_(n, n, 1 - c.Beta2);
        n.mul_(c.GradCoefficient).add_(m, c.MomentCoefficient);
        var d = state.Scratch(NAdamState.Denominator).copy_(v);
        if (c.EpsTerm == 0) {
            d.rsqrt_().nan_to_num_(0, 0, 0);
            return new Proposal(n, c.Scale, multiplier: d);
        }
        d.sqrt_().add_(c.EpsTerm);
        return new Proposal(n, c.Scale, divisor: d);
    }

    /// <summary>Advances the step count and μ's product; returns the step's host constants.</summary>
    private static NAdamPlan Advance(NAdamOptions o, NAdamState state)
    {
        long t = ++state.Step;
        double lr = o.LearningRate!.Value, beta1 = o.Beta1!.Value, beta2 = o.Beta2!.Value, psi = o.MomentumDecay!.Value;
        double mu = beta1 * (1.0 - 0.5 * Math.Pow(0.96, t * psi));
        double muNext = beta1 * (1.0 - 0.5 * Math.Pow(0.96, (t + 1) * psi));
        double product = state.MuProduct * mu;
        double productNext = product * muNext;
        state.MuProduct = product;
        double sqrtBc2 = Math.Sqrt(1 - Math.Pow(beta2, t));
        return new NAdamPlan {
            WeightDecay = o.WeightDecay!.Value,
            Beta1 = beta1,
            Beta2 = beta2,
            GradCoefficient = (1 - mu) / (1 - product),
            MomentCoefficient = muNext / (1 - productNext),
            EpsTerm = o.Epsilon!.Value * sqrtBc2,
            Scale = -lr * sqrtBc2,
        };
    }

    /// <summary>The fused kernel's form of <see cref="Propose"/>: advances the state's counters, returns constants and slot addresses.</summary>
    internal static (NAdamPlan, FusedPointers) Plan(NAdamOptions o, NAdamState state) =>
        (Advance(o, state), new FusedPointers { S0 = state.SlotAddress(NAdamState.M), S1 = state.SlotAddress(NAdamState.V) });

    /// <summary>The fused step over elements [start, end) of one tensor.</summary>
    internal static void Chunk(in NAdamPlan p, in FusedPointers at, long start, long end)
    {
        if (at.Single) FusedRules.Sweep<float, Kernel<float>>(new Kernel<float>(p), at, start, end);
        else FusedRules.Sweep<double, Kernel<double>>(new Kernel<double>(p), at, start, end);
    }

    private readonly unsafe struct Kernel<T> : IVectorKernel<T> where T : unmanaged, IFloatingPointIeee754<T>
    {
        private readonly Vector<T> _wd, _b1, _c1, _b2, _c2, _cg, _cm, _eps, _scale;
        private readonly bool _decay, _pseudoInverse;

        public Kernel(in NAdamPlan p)
        {
            _wd = FusedRules.V<T>(p.WeightDecay);
            _b1 = FusedRules.V<T>(p.Beta1);
            _c1 = FusedRules.V<T>(1 - p.Beta1);
            _b2 = FusedRules.V<T>(p.Beta2);
            _c2 = FusedRules.V<T>(1 - p.Beta2);
            _cg = FusedRules.V<T>(p.GradCoefficient);
            _cm = FusedRules.V<T>(p.MomentCoefficient);
            _eps = FusedRules.V<T>(p.EpsTerm);
            _scale = FusedRules.V<T>(p.Scale);
            _decay = p.WeightDecay != 0;
            _pseudoInverse = p.EpsTerm == 0;
        }

        public void Body(T* w, T* g, T* s0, T* s1, T* s2, long i)
        {
            var wi = FusedRules.Load(w, i);
            var gi = FusedRules.Load(g, i);
            if (_decay) gi += wi * _wd;
            var m = FusedRules.Load(s0, i) * _b1 + _c1 * gi;
            var v = FusedRules.Load(s1, i) * _b2 + _c2 * (gi * gi);
            FusedRules.Store(s0, i, m);
            FusedRules.Store(s1, i, v);
            var num = gi * _cg + m * _cm;
            var root = Vector.SquareRoot(v);
            var step = _pseudoInverse ? num * FusedRules.PseudoInverse(root) : num / (root + _eps);
            FusedRules.Store(w, i, wi + _scale * step);
        }
    }
}
