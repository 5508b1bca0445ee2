using System.Numerics;

namespace AdaGraft.Rules;

/// <summary>
/// Hyperparameters of <see cref="AdamaxRule"/> (one parameter group). Unset values inherit the optimizer's defaults. β2
/// decays the infinity norm u; ε is added to <c>|g|</c> inside the maximum (0: a coordinate with <c>u = 0</c> does not
/// move); the weight decay is L2, added to the gradient (<c>g ← g + λ·w</c>).
/// </summary>
public sealed class AdamaxOptions : AdaptiveOptions
{
    /// <inheritdoc />
    public override void Validate() => ValidateAdaptive();
}

/// <summary>Per-tensor state of Adamax: slots exp_avg (m) and exp_inf (u, the decayed infinity norm).</summary>
public sealed class AdamaxState : RuleState
{
    internal const int M = 0, U = 1;
    internal const int Gradient = 0, Denominator = 1;

    /// <summary>Creates the state of <paramref name="parameter"/>.</summary>
    public AdamaxState(Parameter parameter) : base(parameter, new[] { "exp_avg", "exp_inf" }, 2)
    {
    }

    /// <summary>The first moment, or null before it was allocated.</summary>
    public Tensor? FirstMoment => GetSlot(M);

    /// <summary>The decayed infinity norm, or null before it was allocated.</summary>
    public Tensor? InfinityNorm => GetSlot(U);
}

/// <summary>The host constants of one Adamax step (see <see cref="AdamaxRule"/>).</summary>
internal struct AdamaxPlan
{
    public double WeightDecay, Beta1, Beta2, Eps, Scale;
}

/// <summary>
/// Adamax (Kingma and Ba, 2015, "Adam: A Method for Stochastic Optimization", section 7.1): Adam with the second
/// moment replaced by an exponentially decayed infinity norm, as TorchSharp's <c>torch.optim.Adamax</c> computes it.
/// </summary>
/// <remarks>
/// <code>
/// g ← g + λ·w;   m ← β1·m + (1−β1)·g;   u ← max(β2·u, |g| + ε)
/// w ← w − η/(1−β1^t) · m/u                 (ε = 0: pseudoinverse, 0 where u = 0)
/// </code>
/// </remarks>
public sealed class AdamaxRule : IRule<AdamaxOptions, AdamaxState>
{
    private AdamaxRule() { }

    /// <inheritdoc />
    public static AdamaxState NewState(Parameter parameter) => new(parameter);

    /// <summary>Advances <paramref name="state"/> with <paramref name="grad"/> and returns the step for <paramref name="param"/>.</summary>
    public static Proposal Propose(AdamaxOptions o, AdamaxState state, Tensor param, Tensor grad)
    {
        var c = Advance(o, state);
        var m = state.Slot(AdamaxState.M);
        var u = state.Slot(AdamaxState.U);
        var g = RuleSteps.Gradient(state, AdamaxState.Gradient, grad, param, c.WeightDecay);
        m.mul_(c.Beta1).add_(g, 1 - c.Beta1);
        var d = state.Scratch(AdamaxState.Denominator).copy_(g).abs_().add_(c.Eps);
        u.mul_(c.Beta2).clamp_(min: d);
        d.copy_(u);
        if (c.Eps == 0) {
            d.reciprocal_().nan_to_num_(0, 0, 0);
            return new Proposal(m, c.Scale, multiplier: d);
        }
        return new Proposal(m, c.Scale, divisor: d);
    }

    /// <summary>Advances the step count; returns the step's host constants.</summary>
    private static AdamaxPlan Advance(AdamaxOptions o, AdamaxState state)
    {
        long t = RuleSteps.Begin(o, state);
        double beta1 = o.Beta1!.Value;
        return new AdamaxPlan {
            WeightDecay = o.WeightDecay!.Value,
            Beta1 = beta1,
            Beta2 = o.Beta2!.Value,
            Eps = o.Epsilon!.Value,
            Scale = -o.LearningRate!.Value / (1 - Math.Pow(beta1, t)),
        };
    }

    /// <summary>The fused kernel's form of <see cref="Propose"/>: advances the step count, returns constants and slot addresses.</summary>
    internal static (AdamaxPlan, FusedPointers) Plan(AdamaxOptions o, AdamaxState state) =>
        (Advance(o, state), new FusedPointers { S0 = state.SlotAddress(AdamaxState.M), S1 = state.SlotAddress(AdamaxState.U) });

    /// <summary>The fused step (<see cref="FusedParts.Chunk"/>): one vector of <see cref="Propose"/>.</summary>
    internal readonly unsafe struct Kernel<T> : IVectorKernel<T>, IPlanKernel<AdamaxPlan, Kernel<T>> where T : unmanaged, IFloatingPointIeee754<T>
    {
        private readonly FusedGradient<T> _gradient;
        private readonly FusedAverage<T> _m;
        private readonly Vector<T> _b2, _eps, _scale;
        private readonly bool _pseudoInverse;

        private Kernel(in AdamaxPlan p)
        {
            _gradient = new(p.WeightDecay);
            _m = new(p.Beta1);
            _b2 = FusedRules.V<T>(p.Beta2);
            _eps = FusedRules.V<T>(p.Eps);
            _scale = FusedRules.V<T>(p.Scale);
            _pseudoInverse = p.Eps == 0;
        }

        public static Kernel<T> Create(in AdamaxPlan p) => new(p);

        public void Body(T* w, T* g, T* s0, T* s1, T* s2, long i)
        {
            var gi = _gradient.Load(w, g, i, out var wi);
            var m = _m.Next(FusedRules.Load(s0, i), gi);
            var u = Vector.Max(FusedRules.Load(s1, i) * _b2, Vector.Abs(gi) + _eps);
            FusedRules.Store(s0, i, m);
            FusedRules.Store(s1, i, u);
            var step = _pseudoInverse ? m * FusedRules.PseudoInverse(u) : m / u;
            FusedRules.Store(w, i, wi + _scale * step);
        }
    }
}
