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
        ArgumentNullException.ThrowIfNull(o);
        ArgumentNullException.ThrowIfNull(state);
        var c = Advance(o, state);
        var m = state.Slot(RAdamState.M);
        var v = state.Slot(RAdamState.V);
        var g = grad;
        if (c.WeightDecay != 0) g = state.Scratch(RAdamState.Gradient).copy_(grad).add_(param, c.WeightDecay);
        m.mul_(c.Beta1).add_(g, 1 - c.Beta1);
        v.mul_(c.Beta2).addcmul_(g, g, 1 - c.Beta2);
        if (!c.Rectified) return new Proposal(m, c.Scale);
        var d = state.Scratch(RAdamState.Denominator).copy_(v);
        if (c.Eps == 0) {
            d.rsqrt_().nan_to_num_(0, 0, 0);
            return new Proposal(m, c.Scale, multiplier: d);
        }
        d.sqrt_().add_(c.Eps);
        return new Proposal(m, c.Scale, divisor: d);
    }

    /// <summary>Advances the step count; returns the step's host constants.</summary>
    private static RAdamPlan Advance(RAdamOptions o, RAdamState state)
    {
        long t = ++state.Step;
        double lr = o.LearningRate!.Value, beta1 = o.Beta1!.Value, beta2 = o.Beta2!.Value;
        double bc1 = 1 - Math.Pow(beta1, t), bc2 = 1 - Math.Pow(beta2, t);
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

    /// <summary>The fused step over elements [start, end) of one tensor.</summary>
    internal static void Chunk(in RAdamPlan p, in FusedPointers at, long start, long end)
    {
        if (at.Single) FusedRules.Sweep<float, Kernel<float>>(new Kernel<float>(p), at, start, end);
        else FusedRules.Sweep<double, Kernel<double>>(new Kernel<double>(p), at, start, end);
    }

    private readonly unsafe struct Kernel<T> : IVectorKernel<T> where T : unmanaged, IFloatingPointIeee754<T>
    {
        private readonly Vector<T> _wd, _b1, _c1, _b2, _c2, _eps, _scale;
        private readonly bool _decay, _rectified, _pseudoInverse;

        public Kernel(in RAdamPlan p)
        {
            _wd = FusedRules.V<T>(p.WeightDecay);
            _b1 = FusedRules.V<T>(p.Beta1);
            _c1 = FusedRules.V<T>(1 - p.Beta1);
            _b2 = FusedRules.V<T>(p.Beta2);
            _c2 = FusedRules.V<T>(1 - p.Beta2);
            _eps = FusedRules.V<T>(p.Eps);
            _scale = FusedRules.V<T>(p.Scale);
            _decay = p.WeightDecay != 0;
            _rectified = p.Rectified;
            _pseudoInverse = p.Eps == 0;
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
            var step = m;
            if (_rectified) {
                var root = Vector.SquareRoot(v);
                step = _pseudoInverse ? m * FusedRules.PseudoInverse(root) : m / (root + _eps);
            }
            FusedRules.Store(w, i, wi + _scale * step);
        }
    }
}
