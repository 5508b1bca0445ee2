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
        var c = Advance(o, state);
        var (m, v, g) = RuleSteps.AdamMoments(state, NAdamState.M, NAdamState.V, NAdamState.Numerator, grad, param, c.WeightDecay, c.Beta1, c.Beta2);
        // The numerator mixes the gradient and m in the scratch buffer (which holds g already when it was decayed).
        var n = ReferenceEquals(g, grad) ? state.Scratch(NAdamState.Numerator).copy_(grad) : g;
        n.mul_(c.GradCoefficient).add_(m, c.MomentCoefficient);
        return RuleSteps.OverRoot(state, NAdamState.Denominator, v, n, c.Scale, c.EpsTerm);
    }

    /// <summary>Advances the step count and μ's product; returns the step's host constants.</summary>
    private static NAdamPlan Advance(NAdamOptions o, NAdamState state)
    {
        long t = RuleSteps.Begin(o, state);
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

    /// <summary>The fused step (<see cref="FusedParts.Chunk"/>): one vector of <see cref="Propose"/>.</summary>
    internal readonly unsafe struct Kernel<T> : IVectorKernel<T>, IPlanKernel<NAdamPlan, Kernel<T>> where T : unmanaged, IFloatingPointIeee754<T>
    {
        private readonly FusedMoments<T> _moments;
        private readonly FusedRoot<T> _root;
        private readonly Vector<T> _cg, _cm, _scale;

        private Kernel(in NAdamPlan p)
        {
            _moments = new(p.WeightDecay, p.Beta1, p.Beta2);
            _cg = FusedRules.V<T>(p.GradCoefficient);
            _cm = FusedRules.V<T>(p.MomentCoefficient);
            _root = new(p.EpsTerm);
            _scale = FusedRules.V<T>(p.Scale);
        }

        public static Kernel<T> Create(in NAdamPlan p) => new(p);

        public void Body(T* w, T* g, T* s0, T* s1, T* s2, long i)
        {
            var gi = _moments.Update(w, g, s0, s1, i, out var wi, out var m, out var v);
            var num = gi * _cg + m * _cm;
            var step = _root.Divide(num, Vector.SquareRoot(v));
            FusedRules.Store(w, i, wi + _scale * step);
        }
    }
}
