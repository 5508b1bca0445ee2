using System.Numerics;

namespace AdaGraft.Rules;

/// <summary>Hyperparameters of <see cref="AdadeltaRule"/> (one parameter group). Unset values inherit the optimizer's defaults.</summary>
public sealed class AdadeltaOptions : RuleOptions
{
    /// <summary>ρ, the decay of both running averages, in [0, 1].</summary>
    public double? Rho { get; set; }

    /// <summary>ε ≥ 0 inside both roots; 0 makes a coordinate whose ratio is 0/0 or ∞ not move.</summary>
    public double? Epsilon { get; set; }

    /// <summary>L2 weight decay λ ≥ 0, added to the gradient (<c>g ← g + λ·w</c>).</summary>
    public double? WeightDecay { get; set; }

    /// <summary>Ascend the objective instead of descending it.</summary>
    public bool? Maximize { get; set; }

    /// <inheritdoc />
    public override void Validate()
    {
        ValidateLearningRate();
        RequireInRange(Rho, 0, 1, hiOpen: false, "rho", "use e.g. 0.9.");
        RequireAtLeast(Epsilon, 0, "eps", "use e.g. 1e-6.");
        RequireAtLeast(WeightDecay, 0, "weight_decay", "use 0 for none.");
    }
}

/// <summary>Per-tensor state of Adadelta: slots square_avg (E[g²]) and acc_delta (E[Δ²]).</summary>
public sealed class AdadeltaState : RuleState
{
    internal const int SquareAvg = 0, AccDelta = 1;
    internal const int Gradient = 0, Delta = 1, Denominator = 2;

    /// <summary>Creates the state of <paramref name="parameter"/>.</summary>
    public AdadeltaState(Parameter parameter) : base(parameter, new[] { "square_avg", "acc_delta" }, 3)
    {
    }

    /// <summary>The running average of squared gradients, or null before it was allocated.</summary>
    public Tensor? SquareAverage => GetSlot(SquareAvg);

    /// <summary>The running average of squared updates, or null before it was allocated.</summary>
    public Tensor? DeltaAverage => GetSlot(AccDelta);
}

/// <summary>The host constants of one Adadelta step (see <see cref="AdadeltaRule"/>).</summary>
internal struct AdadeltaPlan
{
    public double WeightDecay, Rho, Eps, Scale;
    public bool Maximize;
}

/// <summary>
/// Adadelta (Zeiler, 2012, "ADADELTA: An Adaptive Learning Rate Method"), as TorchSharp's <c>torch.optim.Adadelta</c>
/// computes it: the step is the gradient scaled by the ratio of the RMS of past updates to the RMS of past gradients.
/// </summary>
/// <remarks>
/// <code>
/// g ← ±g + λ·w   (− when maximize)
/// s ← ρ·s + (1−ρ)·g²
/// Δ = √(a + ε)/√(s + ε) · g          (ε = 0: 0 where the ratio is 0/0 or ∞)
/// a ← ρ·a + (1−ρ)·Δ²
/// w ← w − η·Δ
/// </code>
/// </remarks>
public sealed class AdadeltaRule : IRule<AdadeltaOptions, AdadeltaState>
{
    private AdadeltaRule() { }

    /// <inheritdoc />
    public static AdadeltaState NewState(Parameter parameter) => new(parameter);

    /// <summary>Advances <paramref name="state"/> with <paramref name="grad"/> and returns the step for <paramref name="param"/>.</summary>
    public static Proposal Propose(AdadeltaOptions o, AdadeltaState state, Tensor param, Tensor grad)
    {
        var c = Advance(o, state);
        var s = state.Slot(AdadeltaState.SquareAvg);
        var a = state.Slot(AdadeltaState.AccDelta);
        var g = RuleSteps.Gradient(state, AdadeltaState.Gradient, grad, param, c.WeightDecay, c.Maximize);
        s.mul_(c.Rho).addcmul_(g, g, 1 - c.Rho);
        var d = state.Scratch(AdadeltaState.Denominator).copy_(s).add_(c.Eps).sqrt_();
        var delta = state.Scratch(AdadeltaState.Delta).copy_(a).add_(c.Eps).sqrt_().div_(d).mul_(g);
        if (c.Eps == 0) delta.nan_to_num_(0, 0, 0);
        a.mul_(c.Rho).addcmul_(delta, delta, 1 - c.Rho);
        return new Proposal(delta, c.Scale);
    }

    /// <summary>Advances the step count; returns the step's host constants.</summary>
    private static AdadeltaPlan Advance(AdadeltaOptions o, AdadeltaState state)
    {
        RuleSteps.Begin(o, state);
        return new AdadeltaPlan {
            WeightDecay = o.WeightDecay!.Value,
            Rho = o.Rho!.Value,
            Eps = o.Epsilon!.Value,
            Scale = -o.LearningRate!.Value,
            Maximize = o.Maximize!.Value,
        };
    }

    /// <summary>The fused kernel's form of <see cref="Propose"/>: advances the step count, returns constants and slot addresses.</summary>
    internal static (AdadeltaPlan, FusedPointers) Plan(AdadeltaOptions o, AdadeltaState state) =>
        (Advance(o, state), new FusedPointers {
            S0 = state.SlotAddress(AdadeltaState.SquareAvg),
            S1 = state.SlotAddress(AdadeltaState.AccDelta),
        });

    /// <summary>The fused step (<see cref="FusedParts.Chunk"/>): one vector of <see cref="Propose"/>.</summary>
    internal readonly unsafe struct Kernel<T> : IVectorKernel<T>, IPlanKernel<AdadeltaPlan, Kernel<T>> where T : unmanaged, IFloatingPointIeee754<T>
    {
        private readonly FusedGradient<T> _gradient;
        private readonly FusedAverage<T> _average;
        private readonly Vector<T> _eps, _scale;
        private readonly bool _sanitize;

        private Kernel(in AdadeltaPlan p)
        {
            _gradient = new(p.WeightDecay, p.Maximize);
            _average = new(p.Rho);
            _eps = FusedRules.V<T>(p.Eps);
            _scale = FusedRules.V<T>(p.Scale);
            _sanitize = p.Eps == 0;
        }

        public static Kernel<T> Create(in AdadeltaPlan p) => new(p);

        public void Body(T* w, T* g, T* s0, T* s1, T* s2, long i)
        {
            var gi = _gradient.Load(w, g, i, out var wi);
            var s = _average.Next(FusedRules.Load(s0, i), gi * gi);
            var delta = Vector.SquareRoot(FusedRules.Load(s1, i) + _eps) / Vector.SquareRoot(s + _eps) * gi;
            if (_sanitize) delta = Vector.ConditionalSelect(Vector.LessThan(Vector.Abs(delta), new Vector<T>(T.PositiveInfinity)), delta, Vector<T>.Zero);
            FusedRules.Store(s0, i, s);
            FusedRules.Store(s1, i, _average.Next(FusedRules.Load(s1, i), delta * delta));
            FusedRules.Store(w, i, wi + _scale * delta);
        }
    }
}
