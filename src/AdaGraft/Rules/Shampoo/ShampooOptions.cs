namespace AdaGraft.Rules;

/// <summary>The method whose step size Shampoo takes per block (its grafting method, "A" in <see cref="ShampooRule"/>).</summary>
public enum ShampooGrafting
{
    /// <summary>No grafting: the preconditioned direction is used as it is (before the first root: the filtered gradient).</summary>
    None = 0,

    /// <summary>SGD: <c>A = G̃</c>.</summary>
    Sgd = 1,

    /// <summary>AdaGrad: <c>V ← V + G²</c>, <c>A = G̃/(√V + ε_g)</c>.</summary>
    AdaGrad = 2,

    /// <summary>RMSprop: <c>V ← β_g·V + (1−β_g)·G²</c>, <c>A = G̃/(√V + ε_g)</c>.</summary>
    RmsProp = 3,

    /// <summary>Adam: RMSprop's V, bias-corrected, ε outside the root: <c>A = G̃/(√(V/(1−β_g^t)) + ε_g)</c>.</summary>
    Adam = 4,
}

/// <summary>Hyperparameters of <see cref="ShampooRule"/> (one parameter group). Unset values inherit the optimizer's defaults.</summary>
/// <remarks>
/// <see cref="MomentOptions.Beta1"/> in [0, 1) is the gradient filter <c>G̃ ← β1·G̃ + (1−β1)·G</c> (bias-corrected; 0,
/// the default: G̃ = G); <see cref="MomentOptions.Beta2"/> in [0, 1] is the factors' decay (1, the default: plain sums
/// <c>L ← L + G·Gᵀ</c>).
/// </remarks>
public sealed class ShampooOptions : MomentOptions
{
    /// <summary>ε ≥ 0 added to each factor's eigenvalues before the inverse root (default 1e-12).</summary>
    public double? Epsilon { get; set; }

    /// <summary>Momentum μ in [0, 1) on the grafted direction, <c>M ← μ·M + D</c>; 0 (default): none.</summary>
    public double? Momentum { get; set; }

    /// <summary>Nesterov momentum: the step is <c>D + μ·M</c> instead of <c>M</c> (needs μ &gt; 0).</summary>
    public bool? Nesterov { get; set; }

    /// <summary>Weight decay λ ≥ 0.</summary>
    public double? WeightDecay { get; set; }

    /// <summary>True (default): decoupled decay <c>W ← W − η·λ·W</c> (AdamW); false: L2, <c>G ← G + λ·W</c> before everything.</summary>
    public bool? DecoupledWeightDecay { get; set; }

    /// <summary>The largest side of a block (and of a merged dimension), ≥ 1 (default 1024).</summary>
    public int? MaxPreconditionerDim { get; set; }

    /// <summary>Steps between root computations, ≥ 1 (default 1: every step).</summary>
    public int? PreconditionFrequency { get; set; }

    /// <summary>
    /// The first step (counted from 1) that computes roots and preconditions, a whole number ≥ 1 (default 1); before it
    /// the direction is the grafting method's. <see cref="double.PositiveInfinity"/> (or any value ≥ 2^53, e.g.
    /// <c>long.MaxValue</c>): never.
    /// </summary>
    public double? StartPreconditioningStep { get; set; }

    /// <summary>
    /// Root override p ≥ 0: each factor's root is <c>(L̂ + ε·I)^(−1/p)</c>; 0 (default): p = 2k with k the number of
    /// factors (−1/4 for matrices).
    /// </summary>
    public double? ExponentOverride { get; set; }

    /// <summary>
    /// Blocks with a side larger than this take the grafting method's direction and keep no factors (embeddings);
    /// 0 (default): no limit.
    /// </summary>
    public int? SkipPreconditioningDimSizeGt { get; set; }

    /// <summary>The grafting method (default <see cref="ShampooGrafting.AdaGrad"/>).</summary>
    public ShampooGrafting? Grafting { get; set; }

    /// <summary>ε_g ≥ 0 of the grafting method's denominator (default 1e-10); 0: a coordinate with V = 0 takes 0.</summary>
    public double? GraftingEpsilon { get; set; }

    /// <summary>β_g in [0, 1), the second-moment decay of RMSprop and Adam grafting (default 0.999).</summary>
    public double? GraftingBeta2 { get; set; }

    /// <inheritdoc />
    public override void Validate()
    {
        ValidateBetas("use 0 for no gradient filtering or e.g. 0.9.", "use 1 for sums (Shampoo, AdaGrad-like) or e.g. 0.999.", beta2Closed: true);
        RequireAtLeast(Epsilon, 0, "epsilon", "use e.g. 1e-12.");
        RequireInRange(Momentum, 0, 1, hiOpen: true, "momentum", "use 0 for none or e.g. 0.9.");
        if (Nesterov == true && Momentum == 0)
            throw new ArgumentException("nesterov needs a positive momentum; pass momentum: 0.9 or nesterov: false.", "nesterov");
        RequireAtLeast(WeightDecay, 0, "weight_decay", "use 0 for none.");
        RequireWhole(MaxPreconditionerDim, 1, "max_preconditioner_dim", "use e.g. 1024.");
        RequireWhole(PreconditionFrequency, 1, "precondition_frequency", "use 1 for every step or e.g. 100.");
        if (StartPreconditioningStep is double s && (double.IsNaN(s) || s < 1 || (double.IsFinite(s) && s != Math.Floor(s))))
            throw new ArgumentOutOfRangeException("start_preconditioning_step", s, "start_preconditioning_step must be a whole number ≥ 1 (or long.MaxValue for never); use e.g. 1.");
        RequireAtLeast(ExponentOverride, 0, "exponent_override", "use 0 for the default −1/(2k), or e.g. 2 for (L + εI)^(−1/2).");
        RequireWhole(SkipPreconditioningDimSizeGt, 0, "skip_preconditioning_dim_size_gt", "use 0 for no limit or e.g. 4096.");
        if (Grafting is ShampooGrafting g && !Enum.IsDefined(g))
            throw new ArgumentOutOfRangeException("grafting", g, "grafting must be None, Sgd, AdaGrad, RmsProp or Adam.");
        RequireAtLeast(GraftingEpsilon, 0, "grafting_epsilon", "use e.g. 1e-10 (AdaGrad) or 1e-8 (Adam).");
        RequireInRange(GraftingBeta2, 0, 1, hiOpen: true, "grafting_beta2", "use e.g. 0.999 (Adam) or 0.99 (RMSprop).");
    }

    private static void RequireWhole(int? value, int min, string name, string fix)
    {
        if (value is int v && v < min)
            throw new ArgumentOutOfRangeException(name, v, $"{name} must be an integer ≥ {min}; {fix}");
    }
}
