namespace AdaGraft.Rules;

/// <summary>Hyperparameters of <see cref="AdafactorRule"/> (one parameter group). Unset values inherit the optimizer's defaults.</summary>
public sealed class AdafactorOptions : RuleOptions, Optimizers.IMomentOptions
{
    /// <summary>β1, optional momentum of the clipped update, in [0, 1); 0 (the paper's default) keeps no first moment.</summary>
    public double? Beta1 { get; set; }

    /// <summary>The exponent c of the decay schedule <c>β̂2_t = 1 − t^(−c)</c>, ≥ 0 (the paper: 0.8). Unused when <see cref="FixedBeta2"/>.</summary>
    public double? DecayRate { get; set; }

    /// <summary>
    /// Use a fixed β2 (<see cref="Beta2"/>) instead of the schedule, with Adam's bias correction in the paper's form
    /// <c>β̂2_t = β2·(1 − β2^(t−1)) / (1 − β2^t)</c> (section 6 of the paper).
    /// </summary>
    public bool? FixedBeta2 { get; set; }

    /// <summary>The fixed β2 in [0, 1), used only when <see cref="FixedBeta2"/>.</summary>
    public double? Beta2 { get; set; }

    /// <summary>ε1 ≥ 0 added to g² (the paper: 1e-30); 0 means the pseudoinverse (a coordinate with a zero accumulator does not move).</summary>
    public double? Epsilon1 { get; set; }

    /// <summary>ε2 ≥ 0, the floor of RMS(w) in the relative step size (the paper: 1e-3).</summary>
    public double? Epsilon2 { get; set; }

    /// <summary>The update-clipping threshold d &gt; 0 (the paper: 1): the update is divided by max(1, RMS(u)/d).</summary>
    public double? ClipThreshold { get; set; }

    /// <summary>
    /// The paper's relative step size <c>α_t = max(ε2, RMS(w)) · min(lr, 1/√t)</c> (with lr = 1e-2 as in the
    /// paper). Off by default: the step size is the explicit learning rate.
    /// </summary>
    public bool? RelativeStep { get; set; }

    /// <inheritdoc />
    public override void Validate()
    {
        ValidateLearningRate();
        RequireInRange(Beta1, 0, 1, hiOpen: true, "beta1", "use 0 for no momentum or e.g. 0.9.");
        RequireAtLeast(DecayRate, 0, "decay_rate", "use e.g. 0.8 (the paper's schedule 1 − t^(−0.8)).");
        RequireInRange(Beta2, 0, 1, hiOpen: true, "beta2", "use e.g. 0.999.");
        RequireAtLeast(Epsilon1, 0, "eps1", "use e.g. 1e-30.");
        RequireAtLeast(Epsilon2, 0, "eps2", "use e.g. 1e-3.");
        RequireAtLeast(ClipThreshold, 0, "clip_threshold", "use e.g. 1.0.");
        if (ClipThreshold == 0)
            throw new ArgumentOutOfRangeException("clip_threshold", 0.0, "clip_threshold must be positive; use e.g. 1.0.");
    }
}

/// <summary>
/// Per-tensor state of Adafactor: slots m (momentum, only with β1 &gt; 0), v (full accumulator of tensors of rank
/// &lt; 2), row and col (factored accumulators of tensors of rank ≥ 2, over the last two dimensions).
/// </summary>
public sealed class AdafactorState : RuleState
{
    internal const int M = 0, V = 1, Row = 2, Col = 3;
    internal const int Update = 0;

    /// <summary>Creates the state of <paramref name="parameter"/>.</summary>
    public AdafactorState(Parameter parameter) : base(parameter, new[] { "m", "v", "row", "col" }, 1)
    {
        Factored = parameter.shape.Length >= 2;
    }

    /// <summary>True when the second moment is factored (rank ≥ 2).</summary>
    public bool Factored { get; }

    /// <summary>The momentum buffer, or null without momentum.</summary>
    public Tensor? FirstMoment => GetSlot(M);

    /// <summary>The full second-moment accumulator (rank &lt; 2), or null.</summary>
    public Tensor? SecondMoment => GetSlot(V);

    /// <summary>The row accumulator R (shape without the last dimension; rank ≥ 2), or null.</summary>
    public Tensor? RowAccumulator => GetSlot(Row);

    /// <summary>The column accumulator C (shape without the second-to-last dimension; rank ≥ 2), or null.</summary>
    public Tensor? ColumnAccumulator => GetSlot(Col);

    /// <inheritdoc />
    public override void Initialize(OptimizerOptions options)
    {
        Restart();
        if (Factored) {
            RowSlot();
            ColSlot();
        } else {
            EnsureSlot(V);
        }
        if (((AdafactorOptions)options).Beta1 is > 0) EnsureSlot(M);
    }

    /// <inheritdoc />
    protected override bool SlotsShapedLikeParameter => false;

    /// <inheritdoc />
    protected override long[] ExpectedSlotShape(int index) => index switch {
        Row when Factored => ShapeWithout(Parameter.shape, -1),
        Col when Factored => ShapeWithout(Parameter.shape, -2),
        _ => base.ExpectedSlotShape(index),
    };


    internal Tensor RowSlot() => EnsureSlot(Row);

    internal Tensor ColSlot() => EnsureSlot(Col);
}

/// <summary>
/// Adafactor (Shazeer and Stern, 2018, "Adafactor: Adaptive Learning Rates with Sublinear Memory Cost", ICML,
/// Algorithms 4 and 5): a second-moment method whose accumulator of an n×m matrix is stored as its row and column
/// sums (O(n + m) memory), with update clipping and an increasing decay β̂2_t.
/// </summary>
/// <remarks>
/// <code>
/// β̂2_t = 1 − t^(−c)                                  (or β2·(1−β2^(t−1))/(1−β2^t) with FixedBeta2)
/// matrix (rank ≥ 2, factored over the last two dimensions, per leading index):
///   R ← β̂2_t·R + (1−β̂2_t)·(g² + ε1)·1_m              row sums, shape [..., n]
///   C ← β̂2_t·C + (1−β̂2_t)·1_nᵀ·(g² + ε1)             column sums, shape [..., m]
///   V̂ = R·C / (1_nᵀ·R)
/// vector (rank &lt; 2):
///   V̂ ← β̂2_t·V̂ + (1−β̂2_t)·(g² + ε1)
/// u = g / √V̂
/// û = u / max(1, RMS(u) / d)                          (update clipping; RMS over the whole tensor)
/// m ← β1·m + (1−β1)·û, û ← m                          (only with β1 &gt; 0)
/// w ← w − α_t·û          α_t = lr, or max(ε2, RMS(w)) · min(lr, 1/√t) with RelativeStep
/// </code>
/// With ε1 = 0, a zero accumulator is inverted as 0 (pseudoinverse). RMS(u), RMS(w) and the clipping factor stay on
/// the device as 0-d tensors; the only temporaries besides one scratch buffer are per-row and per-column.
/// </remarks>
public sealed class AdafactorRule : IRule<AdafactorOptions, AdafactorState>
{
    private AdafactorRule() { }

    /// <inheritdoc />
    public static AdafactorState NewState(Parameter parameter) => new(parameter);

    /// <summary>The decay β̂2_t of step <paramref name="t"/>.</summary>
    public static double Beta2At(AdafactorOptions o, long t)
    {
        ArgumentNullException.ThrowIfNull(o);
        if (o.FixedBeta2!.Value) {
            double b = o.Beta2!.Value;
            return b * (1 - Math.Pow(b, t - 1)) / (1 - Math.Pow(b, t));
        }
        return 1 - Math.Pow(t, -o.DecayRate!.Value);
    }

    /// <summary>Advances <paramref name="state"/> with <paramref name="grad"/> and returns the step for <paramref name="param"/>.</summary>
    public static Proposal Propose(AdafactorOptions o, AdafactorState state, Tensor param, Tensor grad)
    {
        long t = RuleSteps.Begin(o, state, param, grad);
        double beta2 = Beta2At(o, t), eps1 = o.Epsilon1!.Value;
        var u = state.Scratch(AdafactorState.Update);

        if (state.Factored) {
            long rows = param.shape[^2], cols = param.shape[^1];
            var g2 = u.copy_(grad).mul_(grad);
            var r = state.RowSlot();
            var c = state.ColSlot();
            var rowSums = g2.sum(-1);
            var colSums = g2.sum(-2);
            if (eps1 != 0) {
                rowSums.add_(cols * eps1);
                colSums.add_(rows * eps1);
            }
            r.mul_(beta2).add_(rowSums, 1 - beta2);
            c.mul_(beta2).add_(colSums, 1 - beta2);
            // 1/√V̂_ij = √(ΣR / R_i) · 1/√C_j: a per-row and a per-column factor.
            var rowFactor = r.div(r.sum(-1, keepdim: true)).rsqrt_().nan_to_num_(0, 0, 0);
            var colFactor = c.rsqrt().nan_to_num_(0, 0, 0);
            u.copy_(grad).mul_(rowFactor.unsqueeze(-1)).mul_(colFactor.unsqueeze(-2));
        } else {
            var v = state.Slot(AdafactorState.V);
            v.mul_(beta2).addcmul_(grad, grad, 1 - beta2);
            if (eps1 != 0) v.add_((1 - beta2) * eps1);
            u.copy_(v).rsqrt_();
            if (eps1 == 0) u.nan_to_num_(0, 0, 0);
            u.mul_(grad);
        }

        // Update clipping: û = u / max(1, RMS(u)/d).
        double sqrtN = Math.Sqrt(Math.Max(1, param.numel()));
        var clip = u.norm().div_(sqrtN * o.ClipThreshold!.Value).clamp_min_(1).reciprocal_();
        u.mul_(clip);

        Tensor result = u;
        double beta1 = o.Beta1!.Value;
        if (beta1 > 0) {
            result = state.Slot(AdafactorState.M);
            result.mul_(beta1).add_(u, 1 - beta1);
        }

        double step = o.LearningRate!.Value;
        if (o.RelativeStep!.Value) {
            step = Math.Min(step, 1 / Math.Sqrt(t));
            var scale = param.norm().div_(sqrtN).clamp_min_(o.Epsilon2!.Value);
            if (!ReferenceEquals(result, u)) result = u.copy_(result);
            result.mul_(scale);
        }
        return new Proposal(result, -step);
    }
}
