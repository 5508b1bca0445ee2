using System.Numerics;

namespace AdaGraft.Rules;

/// <summary>Hyperparameters of <see cref="RmsPropRule"/> (one parameter group). Unset values inherit the optimizer's defaults.</summary>
public sealed class RmsPropOptions : RuleOptions, Optimizers.IMomentOptions
{
    /// <summary>α, the decay of the running averages, in [0, 1].</summary>
    public double? Alpha { get; set; }

    /// <summary>ε ≥ 0 added to the root; 0 means the pseudoinverse (a coordinate with a zero root does not move).</summary>
    public double? Epsilon { get; set; }

    /// <summary>L2 weight decay λ ≥ 0, added to the gradient (<c>g ← g + λ·w</c>).</summary>
    public double? WeightDecay { get; set; }

    /// <summary>Momentum μ of the preconditioned gradients, in [0, 1]; 0 for none.</summary>
    public double? Momentum { get; set; }

    /// <summary>Centered: divide by the root of the variance estimate <c>v − ḡ²</c> instead of <c>v</c>.</summary>
    public bool? Centered { get; set; }

    /// <summary>Ascend the objective instead of descending it.</summary>
    public bool? Maximize { get; set; }

    /// <summary>β1 for schedulers that cycle momentum: <see cref="Momentum"/>.</summary>
    double? Optimizers.IMomentOptions.Beta1 { get => Momentum; set => Momentum = value; }

    /// <summary>β2 for schedulers that cycle betas: <see cref="Alpha"/>.</summary>
    double? Optimizers.IMomentOptions.Beta2 { get => Alpha; set => Alpha = value; }

    /// <inheritdoc />
    public override void Validate()
    {
        ValidateLearningRate();
        RequireInRange(Alpha, 0, 1, hiOpen: false, "alpha", "use e.g. 0.99.");
        RequireAtLeast(Epsilon, 0, "eps", "use e.g. 1e-8, or 0 for the pseudoinverse.");
        RequireAtLeast(WeightDecay, 0, "weight_decay", "use 0 for none.");
        RequireInRange(Momentum, 0, 1, hiOpen: false, "momentum", "use 0 for none or e.g. 0.9.");
    }
}

/// <summary>Per-tensor state of RMSprop: slots square_avg (v), momentum_buffer and grad_avg (ḡ, centered only).</summary>
public sealed class RmsPropState : RuleState
{
    internal const int SquareAvg = 0, Buffer = 1, GradAvg = 2;
    internal const int Gradient = 0, Denominator = 1;

    /// <summary>Creates the state of <paramref name="parameter"/>.</summary>
    public RmsPropState(Parameter parameter) : base(parameter, new[] { "square_avg", "momentum_buffer", "grad_avg" }, 2)
    {
    }

    /// <summary>The running average of squared gradients, or null before it was allocated.</summary>
    public Tensor? SquareAverage => GetSlot(SquareAvg);

    /// <summary>The momentum buffer, or null without momentum.</summary>
    public Tensor? MomentumBuffer => GetSlot(Buffer);

    /// <summary>The running average of gradients (centered only), or null.</summary>
    public Tensor? GradientAverage => GetSlot(GradAvg);

    /// <inheritdoc />
    public override void Initialize(OptimizerOptions options)
    {
        ThrowIfDisposed();
        ClearSlots();
        var o = (RmsPropOptions)options;
        EnsureSlot(SquareAvg);
        if (o.Momentum is > 0) EnsureSlot(Buffer);
        if (o.Centered == true) EnsureSlot(GradAvg);
    }
}

/// <summary>The host constants of one RMSprop step (see <see cref="RmsPropRule"/>).</summary>
internal struct RmsPropPlan
{
    public double WeightDecay, Alpha, Eps, Momentum, Scale;
    public bool Maximize, Centered, HasMomentum;
}

/// <summary>
/// RMSprop (Tieleman and Hinton, 2012, lecture 6.5; centered: Graves, 2013, "Generating Sequences With Recurrent
/// Neural Networks", eq. 38–40) as TorchSharp's <c>torch.optim.RMSProp</c> computes it, centered or not.
/// </summary>
/// <remarks>
/// <code>
/// g ← ±g + λ·w   (− when maximize)
/// v ← α·v + (1−α)·g²
/// centered: ḡ ← α·ḡ + (1−α)·g;  D = √(v − ḡ²) + ε      otherwise D = √v + ε
/// μ > 0:  b ← μ·b + g/D;  w ← w − η·b                   otherwise w ← w − η·g/D
/// </code>
/// ε = 0 is the pseudoinverse (0 where the root is 0). The non-centered form computes what
/// <c>GenericSecondMomentOptimizer.TorchRmsProp</c> computes; this rule exists for the centered form,
/// whose extra average is a slot Algorithm 1 does not have.
/// </remarks>
public sealed class RmsPropRule : IRule<RmsPropOptions, RmsPropState>
{
    private RmsPropRule() { }

    /// <inheritdoc />
    public static RmsPropState NewState(Parameter parameter) => new(parameter);

    /// <summary>Advances <paramref name="state"/> with <paramref name="grad"/> and returns the step for <paramref name="param"/>.</summary>
    public static Proposal Propose(RmsPropOptions o, RmsPropState state, Tensor param, Tensor grad)
    {
        ArgumentNullException.ThrowIfNull(o);
        ArgumentNullException.ThrowIfNull(state);
        var c = Advance(o, state);
        var g = grad;
        if (c.Maximize || c.WeightDecay != 0) {
            g = state.Scratch(RmsPropState.Gradient).copy_(grad);
            if (c.Maximize) g.neg_();
            if (c.WeightDecay != 0) g.add_(param, c.WeightDecay);
        }
        var v = state.Slot(RmsPropState.SquareAvg);
        v.mul_(c.Alpha).addcmul_(g, g, 1 - c.Alpha);
        var d = state.Scratch(RmsPropState.Denominator).copy_(v);
        if (c.Centered) {
            var mean = state.Slot(RmsPropState.GradAvg);
            mean.mul_(c.Alpha).add_(g, 1 - c.Alpha);
            d.addcmul_(mean, mean, -1);
        }
        bool pseudoInverse = c.Eps == 0;
        if (pseudoInverse) d.rsqrt_().nan_to_num_(0, 0, 0);
        else d.sqrt_().add_(c.Eps);
        if (!c.HasMomentum) return pseudoInverse ? new Proposal(g, c.Scale, multiplier: d) : new Proposal(g, c.Scale, divisor: d);
        var b = state.Slot(RmsPropState.Buffer);
        b.mul_(c.Momentum);
        if (pseudoInverse) b.addcmul_(g, d, 1);
        else b.addcdiv_(g, d, 1);
        return new Proposal(b, c.Scale);
    }

    /// <summary>Advances the step count; returns the step's host constants.</summary>
    private static RmsPropPlan Advance(RmsPropOptions o, RmsPropState state)
    {
        ++state.Step;
        double momentum = o.Momentum!.Value;
        return new RmsPropPlan {
            WeightDecay = o.WeightDecay!.Value,
            Alpha = o.Alpha!.Value,
            Eps = o.Epsilon!.Value,
            Momentum = momentum,
            Scale = -o.LearningRate!.Value,
            Maximize = o.Maximize!.Value,
            Centered = o.Centered!.Value,
            HasMomentum = momentum > 0,
        };
    }

    /// <summary>The fused kernel's form of <see cref="Propose"/>: advances the step count, allocates the slots the step needs, returns constants and addresses.</summary>
    internal static (RmsPropPlan, FusedPointers) Plan(RmsPropOptions o, RmsPropState state)
    {
        var p = Advance(o, state);
        return (p, new FusedPointers {
            S0 = state.SlotAddress(RmsPropState.SquareAvg),
            S1 = p.HasMomentum ? state.SlotAddress(RmsPropState.Buffer) : IntPtr.Zero,
            S2 = p.Centered ? state.SlotAddress(RmsPropState.GradAvg) : IntPtr.Zero,
        });
    }

    /// <summary>The fused step over elements [start, end) of one tensor.</summary>
    internal static void Chunk(in RmsPropPlan p, in FusedPointers at, long start, long end)
    {
        if (at.Single) FusedRules.Sweep<float, Kernel<float>>(new Kernel<float>(p), at, start, end);
        else FusedRules.Sweep<double, Kernel<double>>(new Kernel<double>(p), at, start, end);
    }

    private readonly unsafe struct Kernel<T> : IVectorKernel<T> where T : unmanaged, IFloatingPointIeee754<T>
    {
        private readonly Vector<T> _wd, _alpha, _c, _eps, _mu, _scale;
        private readonly bool _decay, _maximize, _centered, _momentum, _pseudoInverse;

        public Kernel(in RmsPropPlan p)
        {
            _wd = FusedRules.V<T>(p.WeightDecay);
            _alpha = FusedRules.V<T>(p.Alpha);
            _c = FusedRules.V<T>(1 - p.Alpha);
            _eps = FusedRules.V<T>(p.Eps);
            _mu = FusedRules.V<T>(p.Momentum);
            _scale = FusedRules.V<T>(p.Scale);
            _decay = p.WeightDecay != 0;
            _maximize = p.Maximize;
            _centered = p.Centered;
            _momentum = p.HasMomentum;
            _pseudoInverse = p.Eps == 0;
        }

        public void Body(T* w, T* g, T* s0, T* s1, T* s2, long i)
        {
            var wi = FusedRules.Load(w, i);
            var gi = FusedRules.Load(g, i);
            if (_maximize) gi = -gi;
            if (_decay) gi += wi * _wd;
            var v = FusedRules.Load(s0, i) * _alpha + _c * (gi * gi);
            FusedRules.Store(s0, i, v);
            var variance = v;
            if (_centered) {
                var mean = FusedRules.Load(s2, i) * _alpha + _c * gi;
                FusedRules.Store(s2, i, mean);
                variance = v - mean * mean;
            }
            var root = Vector.SquareRoot(variance);
            var q = _pseudoInverse ? gi * FusedRules.PseudoInverse(root) : gi / (root + _eps);
            if (_momentum) {
                q = FusedRules.Load(s1, i) * _mu + q;
                FusedRules.Store(s1, i, q);
            }
            FusedRules.Store(w, i, wi + _scale * q);
        }
    }
}
