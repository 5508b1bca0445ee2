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
        var o = Restart<RmsPropOptions>(options);
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
        var c = Advance(o, state);
        var g = RuleSteps.Gradient(state, RmsPropState.Gradient, grad, param, c.WeightDecay, c.Maximize);
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
        RuleSteps.Begin(o, state);
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

    /// <summary>The fused step (<see cref="FusedParts.Chunk"/>): one vector of <see cref="Propose"/>.</summary>
    internal readonly unsafe struct Kernel<T> : IVectorKernel<T>, IPlanKernel<RmsPropPlan, Kernel<T>> where T : unmanaged, IFloatingPointIeee754<T>
    {
        private readonly FusedGradient<T> _gradient;
        private readonly FusedAverage<T> _average;
        private readonly FusedRoot<T> _root;
        private readonly Vector<T> _mu, _scale;
        private readonly bool _centered, _momentum;

        private Kernel(in RmsPropPlan p)
        {
            _gradient = new(p.WeightDecay, p.Maximize);
            _average = new(p.Alpha);
            _root = new(p.Eps);
            _mu = FusedRules.V<T>(p.Momentum);
            _scale = FusedRules.V<T>(p.Scale);
            _centered = p.Centered;
            _momentum = p.HasMomentum;
        }

        public static Kernel<T> Create(in RmsPropPlan p) => new(p);

        public void Body(T* w, T* g, T* s0, T* s1, T* s2, long i)
        {
            var gi = _gradient.Load(w, g, i, out var wi);
            var v = _average.Next(FusedRules.Load(s0, i), gi * gi);
            FusedRules.Store(s0, i, v);
            var variance = v;
            if (_centered) {
                var mean = _average.Next(FusedRules.Load(s2, i), gi);
                FusedRules.Store(s2, i, mean);
                variance = v - mean * mean;
            }
            var q = _root.Divide(gi, Vector.SquareRoot(variance));
            if (_momentum) {
                q = FusedRules.Load(s1, i) * _mu + q;
                FusedRules.Store(s1, i, q);
            }
            FusedRules.Store(w, i, wi + _scale * q);
        }
    }
}
