using System.Numerics;

namespace AdaGraft.Rules;

/// <summary>
/// Hyperparameters of <see cref="RAdamRule"/> (one parameter group). Unset values inherit the optimizer's defaults. ε
/// is added to <c>√v</c>; the weight decay is L2, added to the gradient (<c>g ← g + λ·w</c>), as TorchSharp's RAdam
/// does.
/// </summary>
public sealed class RAdamOptions : AdaptiveOptions
{
    /// <summary>
    /// True: the rectified step is multiplied by η twice (η² in place of η), as TorchSharp 0.107's <c>torch.optim.RAdam</c>
    /// computes it; false: η once, as PyTorch and the paper (Liu et al., 2020) do. The unrectified first steps use η once
    /// either way.
    /// </summary>
    public bool? LearningRateSquaredWhenRectified { get; set; }

    /// <inheritdoc />
    public override void Validate() => ValidateAdaptive(beta2Fix: "use e.g. 0.999; 1 would make ρ∞ and the bias correction infinite.");
}

/// <summary>Per-tensor state of RAdam: slots exp_avg (m) and exp_avg_sq (v).</summary>
public sealed class RAdamState : RuleState
{
    internal const int M = 0, V = 1;
    internal const int Gradient = 0, Denominator = 1;

    /// <summary>Creates the state of <paramref name="parameter"/>.</summary>
    public RAdamState(Parameter parameter) : base(parameter, new[] { "exp_avg", "exp_avg_sq" }, 2)
    {
    }

    /// <summary>The first moment, or null before it was allocated.</summary>
    public Tensor? FirstMoment => GetSlot(M);

    /// <summary>The second moment, or null before it was allocated.</summary>
    public Tensor? SecondMoment => GetSlot(V);
}

/// <summary>The host constants of one RAdam step (see <see cref="RAdamRule"/>).</summary>
internal struct RAdamPlan
{
    public double WeightDecay, Beta1, Beta2, Eps, Scale;
    public bool Rectified;
}

/// <summary>
/// RAdam, rectified Adam (Liu, Jiang, He, Chen, Liu, Gao and Han, 2020, "On the Variance of the Adaptive Learning Rate
/// and Beyond", ICLR): momentum SGD while the variance of the adaptive rate is intractable (ρ_t ≤ 5), then Adam with
/// a rectification factor r_t.
/// </summary>
/// <remarks>
/// <code>
/// g ← g + λ·w;   m ← β1·m + (1−β1)·g;   v ← β2·v + (1−β2)·g²
/// ρ∞ = 2/(1−β2) − 1;   ρ_t = ρ∞ − 2t·β2^t/(1−β2^t)
/// ρ_t > 5:  r_t = √((ρ_t−4)(ρ_t−2)ρ∞ / ((ρ∞−4)(ρ∞−2)ρ_t));  w ← w − η'·r_t · m/(1−β1^t) · √(1−β2^t)/(√v + ε)
/// else:     w ← w − η · m/(1−β1^t)
/// </code>
/// η' is η, or η² with <see cref="RAdamOptions.LearningRateSquaredWhenRectified"/> (TorchSharp 0.107's built-in).
/// ε = 0 is the pseudoinverse (0 where v = 0).
/// </remarks>
public sealed class RAdamRule : IRule<RAdamOptions, RAdamState>
{
    private RAdamRule() { }

    /// <inheritdoc />
    public static RAdamState NewState(Parameter parameter) => new(parameter);

    /// <summary>Advances <paramref name="state"/> with <paramref name="grad"/> and returns the step for <paramref name="param"/>.</summary>
    public static Proposal Propose(RAdamOptions o, RAdamState state, Tensor param, Tensor grad)
    {
        var c = Advance(o, state);
        var (m, v, _) = RuleSteps.AdamMoments(state, RAdamState.M, RAdamState.V, RAdamState.Gradient, grad, param, c.WeightDecay, c.Beta1, c.Beta2);
        if (!c.Rectified) return new Proposal(m, c.Scale);
        return RuleSteps.OverRoot(state, RAdamState.Denominator, v, m, c.Scale, c.Eps);
    }

    /// <summary>Advances the step count; returns the step's host constants.</summary>
    private static RAdamPlan Advance(RAdamOptions o, RAdamState state)
    {
        long t = RuleSteps.Begin(o, state);
        double lr = o.LearningRate!.Value, beta1 = o.Beta1!.Value, beta2 = o.Beta2!.Value;
        var (bc1, bc2) = SecondMomentRule.HostBias(t, beta1, beta2);
        double rhoInf = 2 / (1 - beta2) - 1;
        double rhoT = rhoInf - 2 * t * Math.Pow(beta2, t) / bc2;
        var p = new RAdamPlan { WeightDecay = o.WeightDecay!.Value, Beta1 = beta1, Beta2 = beta2, Eps = o.Epsilon!.Value, Scale = -lr / bc1 };
        if (rhoT > 5) {
            double rect = Math.Sqrt((rhoT - 4) * (rhoT - 2) * rhoInf / ((rhoInf - 4) * (rhoInf - 2) * rhoT));
            double lrRectified = o.LearningRateSquaredWhenRectified!.Value ? lr * lr : lr;
            p.Rectified = true;
            p.Scale = -lrRectified * rect * Math.Sqrt(bc2) / bc1;
        }
        return p;
    }

    /// <summary>The fused kernel's form of <see cref="Propose"/>: advances the step count, returns constants and slot addresses.</summary>
    internal static (RAdamPlan, FusedPointers) Plan(RAdamOptions o, RAdamState state) =>
        (Advance(o, state), new FusedPointers { S0 = state.SlotAddress(RAdamState.M), S1 = state.SlotAddress(RAdamState.V) });

    /// <summary>The fused step (<see cref="FusedParts.Chunk"/>): one vector of <see cref="Propose"/>.</summary>
    internal readonly unsafe struct Kernel<T> : IVectorKernel<T>, IPlanKernel<RAdamPlan, Kernel<T>> where T : unmanaged, IFloatingPointIeee754<T>
    {
        private readonly FusedMoments<T> _moments;
        private readonly FusedRoot<T> _root;
        private readonly Vector<T> _scale;
        private readonly bool _rectified;

        private Kernel(in RAdamPlan p)
        {
            _moments = new(p.WeightDecay, p.Beta1, p.Beta2);
            _root = new(p.Eps);
            _scale = FusedRules.V<T>(p.Scale);
            _rectified = p.Rectified;
        }

        public static Kernel<T> Create(in RAdamPlan p) => new(p);

        public void Body(T* w, T* g, T* s0, T* s1, T* s2, long i)
        {
            _moments.Update(w, g, s0, s1, i, out var wi, out var m, out var v);
            var step = m;
            if (_rectified) {
                step = _root.Divide(m, Vector.SquareRoot(v));
            }
            FusedRules.Store(w, i, wi + _scale * step);
        }
    }
}
