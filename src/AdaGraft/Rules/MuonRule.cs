namespace AdaGraft.Rules;

/// <summary>How Muon sizes a matrix's orthogonalised update (the factor <c>s</c> in <c>w ← w − η·s·O</c>).</summary>
public enum MuonSizeRule
{
    /// <summary>Jordan et al.'s <c>s = √max(1, rows/cols)</c> (PyTorch's <c>adjust_lr_fn="original"</c>; the default).</summary>
    Original = 0,

    /// <summary>
    /// Moonlight's <c>s = 0.2·√max(rows, cols)</c> (PyTorch's <c>"match_rms_adamw"</c>): the update's RMS is about
    /// AdamW's, so AdamW's learning rate and weight decay carry over.
    /// </summary>
    MatchAdamWRms = 1,

    /// <summary><c>s = 1</c>: the bare orthogonalised direction, for Muon as the direction D of an exact graft.</summary>
    None = 2,
}

/// <summary>The dtype Muon's Newton–Schulz iteration computes in.</summary>
public enum NewtonSchulzPrecision
{
    /// <summary>float32 for every parameter dtype (the default; the result is cast back to the parameter's dtype).</summary>
    Fp32 = 0,

    /// <summary>The parameter's own dtype (float64 parameters: float64 throughout, for exact comparisons).</summary>
    ParameterDtype = 1,

    /// <summary>bfloat16, as the reference implementations do on GPUs; meant for CUDA (slow on CPU).</summary>
    Bf16 = 2,
}

/// <summary>
/// Hyperparameters of <see cref="MuonRule"/> (one parameter group). Unset values inherit the optimizer's defaults. A
/// group is either a Muon group (<see cref="UseMuon"/>, matrices only) or a fallback AdamW group (the <c>Adam*</c>
/// options); schedulers that cycle momentum cycle <see cref="Momentum"/> in Muon groups and <see cref="AdamBeta1"/>
/// in AdamW groups (β2 is <see cref="AdamBeta2"/> in both).
/// </summary>
public sealed class MuonOptions : RuleOptions, Optimizers.IMomentOptions
{
    /// <summary>True: Muon (matrices only, rank ≥ 2). False: the fallback AdamW (any shape).</summary>
    public bool? UseMuon { get; set; }

    /// <summary>μ, Muon's momentum in [0, 1): <c>B ← μ·B + (1−μ)·g</c>.</summary>
    public double? Momentum { get; set; }

    /// <summary>Nesterov momentum: orthogonalise <c>(1−μ)·g + μ·B</c> instead of <c>B</c>.</summary>
    public bool? Nesterov { get; set; }

    /// <summary>Newton–Schulz steps k, in [1, 100).</summary>
    public int? NsSteps { get; set; }

    /// <summary>Coefficient a of the quintic <c>X ← a·X + (b·A + c·A²)·X</c>, <c>A = X·Xᵀ</c>.</summary>
    public double? NsCoefficientA { get; set; }

    /// <summary>Coefficient b of the quintic.</summary>
    public double? NsCoefficientB { get; set; }

    /// <summary>Coefficient c of the quintic.</summary>
    public double? NsCoefficientC { get; set; }

    /// <summary>ε &gt; 0: the matrix is divided by <c>max(‖X‖_F, ε)</c> before the iteration.</summary>
    public double? Epsilon { get; set; }

    /// <summary>How the orthogonalised update is sized per matrix.</summary>
    public MuonSizeRule? SizeRule { get; set; }

    /// <summary>The dtype of the Newton–Schulz iteration.</summary>
    public NewtonSchulzPrecision? NsPrecision { get; set; }

    /// <summary>Muon's decoupled weight decay λ ≥ 0: <c>w ← w − η·λ·w</c> (η unscaled by the size rule, as in PyTorch).</summary>
    public double? WeightDecay { get; set; }

    /// <summary>The fallback AdamW's β1 in [0, 1).</summary>
    public double? AdamBeta1 { get; set; }

    /// <summary>The fallback AdamW's β2 in [0, 1).</summary>
    public double? AdamBeta2 { get; set; }

    /// <summary>The fallback AdamW's ε ≥ 0 (added to <c>√v̂</c>; 0 is the pseudoinverse: a coordinate with v = 0 does not move).</summary>
    public double? AdamEpsilon { get; set; }

    /// <summary>The fallback AdamW's decoupled weight decay λ ≥ 0.</summary>
    public double? AdamWeightDecay { get; set; }

    double? Optimizers.IMomentOptions.Beta1 {
        get => UseMuon == false ? AdamBeta1 : Momentum;
        set {
            if (UseMuon == false) AdamBeta1 = value;
            else Momentum = value;
        }
    }

    double? Optimizers.IMomentOptions.Beta2 { get => AdamBeta2; set => AdamBeta2 = value; }

    /// <inheritdoc />
    public override void Validate()
    {
        ValidateLearningRate();
        RequireInRange(Momentum, 0, 1, hiOpen: true, "momentum", "use e.g. 0.95 (the reference's).");
        RequireInRange(NsSteps, 1, 100, hiOpen: true, "ns_steps", "use e.g. 5 (the reference's).");
        foreach (var c in new[] { NsCoefficientA, NsCoefficientB, NsCoefficientC }) {
            if (c is double v && !double.IsFinite(v))
                throw new ArgumentOutOfRangeException("ns_coefficients", v, "ns_coefficients must be finite numbers; use (3.4445, -4.7750, 2.0315).");
        }
        RequireAtLeast(Epsilon, 0, "eps", "use e.g. 1e-7.");
        if (Epsilon == 0) throw new ArgumentOutOfRangeException("eps", 0.0, "eps must be positive (a zero matrix is divided by it); use e.g. 1e-7.");
        if (SizeRule is MuonSizeRule r && !Enum.IsDefined(r))
            throw new ArgumentOutOfRangeException("adjust_lr_fn", r, "adjust_lr_fn must be Original, MatchAdamWRms or None.");
        if (NsPrecision is NewtonSchulzPrecision p && !Enum.IsDefined(p))
            throw new ArgumentOutOfRangeException("ns_precision", p, "ns_precision must be Fp32, ParameterDtype or Bf16.");
        RequireAtLeast(WeightDecay, 0, "weight_decay", "use 0 for none.");
        RequireInRange(AdamBeta1, 0, 1, hiOpen: true, "adamw_betas", "β1 must lie in [0, 1); use e.g. (0.9, 0.999).");
        RequireInRange(AdamBeta2, 0, 1, hiOpen: true, "adamw_betas", "β2 must lie in [0, 1); use e.g. (0.9, 0.999).");
        RequireAtLeast(AdamEpsilon, 0, "adamw_eps", "use e.g. 1e-8, or 0 for the pseudoinverse.");
        RequireAtLeast(AdamWeightDecay, 0, "adamw_weight_decay", "use 0 for none.");
    }
}

/// <summary>
/// Per-tensor state of Muon: slot m (Muon's momentum buffer B, or the fallback AdamW's first moment) and slot v (the
/// AdamW's second moment; AdamW groups only); the step count drives AdamW's bias correction.
/// </summary>
public sealed class MuonState : RuleState
{
    internal const int M = 0, V = 1;
    internal const int Update = 0, Denominator = 1;

    /// <summary>Creates the state of <paramref name="parameter"/>.</summary>
    public MuonState(Parameter parameter) : base(parameter, new[] { "m", "v" }, 2)
    {
    }

    /// <summary>Muon's momentum buffer (or AdamW's first moment), or null before it was allocated.</summary>
    public Tensor? MomentumBuffer => GetSlot(M);

    /// <summary>The fallback AdamW's second moment, or null (Muon groups).</summary>
    public Tensor? SecondMoment => GetSlot(V);

    /// <inheritdoc />
    public override void Initialize(OptimizerOptions options)
    {
        var o = Restart<MuonOptions>(options);
        EnsureSlot(M);
        if (o.UseMuon == false) EnsureSlot(V);
    }
}

/// <summary>
/// Muon, "MomentUm Orthogonalized by Newton–Schulz" (Jordan, Jin, Boza, You, Cesista, Newhouse and Bernstein, 2024,
/// "Muon: An optimizer for hidden layers in neural networks", kellerjordan.github.io/posts/muon), with the update-RMS
/// size rule of Liu et al. (2025, "Muon is Scalable for LLM Training", Moonlight, arXiv:2502.16982) and a fallback
/// AdamW (Loshchilov and Hutter, 2019) for the parameters that are not matrices.
/// </summary>
/// <remarks>
/// Muon group, per matrix W (rank ≥ 2, viewed as rows × cols with rows the first dimension and cols the product of the
/// others, so a convolution kernel is out × (in·kh·kw)):
/// <code>
/// B ← μ·B + (1−μ)·g                          (PyTorch's and Jordan's lerp form)
/// U ← (1−μ)·g + μ·B if nesterov, else B
/// X ← U (as rows × cols, in NsPrecision); transposed when rows &gt; cols
/// X ← X / max(‖X‖_F, ε)
/// repeat k times:  A ← X·Xᵀ;  X ← a·X + (b·A + c·A·A)·X       (a, b, c) = (3.4445, −4.7750, 2.0315), k = 5
/// O ← X (transposed back, cast to W's dtype)
/// W ← W − η·λ·W − η·s·O     s = √max(1, rows/cols) | 0.2·√max(rows, cols) | 1   (SizeRule)
/// </code>
/// The quintic is tuned for speed, not convergence: O has U's singular vectors (so its row and column spaces), and
/// each singular value σ of U becomes φ⁵(σ/‖U‖_F), φ(x) = a·x + b·x³ + c·x⁵, which lies in [0.68, 1.203] for
/// σ ≥ 1.5e-3·‖U‖_F and stays below 0.6 under about 1.3e-3·‖U‖_F (five steps lift a tiny σ by at most a⁵ ≈ 490).
/// AdamW group (any shape), TorchSharp's <c>AdamW</c>:
/// <code>
/// m ← β1·m + (1−β1)·g;  v ← β2·v + (1−β2)·g²;  W ← W − η·λ·W − η·(m/(1−β1^t)) / (√(v/(1−β2^t)) + ε)
/// </code>
/// Differences from the references, each a choice: the momentum is PyTorch's and Jordan's code (lerp: an average
/// of gradients; PyTorch's docstring writes B ← μ·B + g, which its code does not do); the iteration runs in float32 by default (PyTorch and Jordan use
/// bfloat16, on GPUs), selectable per group; the normalisation divides by max(‖X‖, ε) as PyTorch does (Jordan adds ε);
/// tensors of rank &gt; 2 are reshaped to rows × rest (as Jordan's conv filters; PyTorch accepts matrices only) and the
/// size rule reads that shape. No host synchronisation: the size factor comes from the shape.
/// </remarks>
public sealed class MuonRule : IRule<MuonOptions, MuonState>
{
    private MuonRule() { }

    /// <inheritdoc />
    public static MuonState NewState(Parameter parameter) => new(parameter);

    /// <summary>Advances <paramref name="state"/> with <paramref name="grad"/> and returns the step for <paramref name="param"/>.</summary>
    public static Proposal Propose(MuonOptions o, MuonState state, Tensor param, Tensor grad)
    {
        RuleSteps.Check(o, state);
        return o.UseMuon!.Value ? ProposeMuon(o, state, param, grad) : ProposeAdamW(o, state, grad);
    }

    /// <summary>The matrix a tensor is orthogonalised as: rows = its first dimension, cols = the product of the others.</summary>
    /// <exception cref="ArgumentException">The shape has rank below 2.</exception>
    public static (long rows, long cols) MatrixShape(long[] shape)
    {
        ArgumentNullException.ThrowIfNull(shape);
        if (shape.Length < 2)
            throw new ArgumentException($"Muon orthogonalises matrices (rank ≥ 2); a tensor of shape [{string.Join(", ", shape)}] belongs in an AdamW group (UseMuon = false).", nameof(shape));
        long cols = 1;
        for (int i = 1; i < shape.Length; i++) cols *= shape[i];
        return (shape[0], cols);
    }

    /// <summary>The size factor s of a rows × cols matrix under <paramref name="rule"/>.</summary>
    public static double SizeFactor(MuonSizeRule rule, long rows, long cols) => rule switch {
        MuonSizeRule.Original => Math.Sqrt(Math.Max(1.0, (double)rows / cols)),
        MuonSizeRule.MatchAdamWRms => 0.2 * Math.Sqrt(Math.Max(rows, cols)),
        MuonSizeRule.None => 1.0,
        _ => throw new ArgumentOutOfRangeException(nameof(rule), rule, "Use Original, MatchAdamWRms or None."),
    };

    /// <summary>
    /// The quintic Newton–Schulz iteration on a matrix: a new tensor of dtype <paramref name="dtype"/> (float32 when
    /// null) and the matrix's shape, with the matrix's singular vectors and its singular values mapped as the class
    /// remarks say (into [0.68, 1.203] from 1.5e-3·‖G‖_F up). <paramref name="matrix"/> is not modified.
    /// </summary>
    public static Tensor NewtonSchulz(Tensor matrix, int steps = 5, double a = 3.4445, double b = -4.7750, double c = 2.0315,
        double eps = 1e-7, ScalarType? dtype = null)
    {
        ArgumentNullException.ThrowIfNull(matrix);
        if (matrix.dim() != 2)
            throw new ArgumentException($"Newton–Schulz needs a matrix; got shape [{string.Join(", ", matrix.shape)}] (reshape it to rows × rest).", nameof(matrix));
        using var scope = torch.NewDisposeScope();
        bool tall = matrix.shape[0] > matrix.shape[1];
        var x = matrix.to_type(dtype ?? ScalarType.Float32);
        if (tall) x = x.t();
        x = x / x.norm().clamp_min(eps);
        for (int i = 0; i < steps; i++) {
            var gram = x.mm(x.t());
            var poly = gram.mm(gram).mul_(c).add_(gram, b);
            x = poly.mm(x).add_(x, a);
        }
        if (tall) x = x.t();
        return x.contiguous().MoveToOuterDisposeScope();
    }

    private static Proposal ProposeMuon(MuonOptions o, MuonState state, Tensor param, Tensor grad)
    {
        ++state.Step;
        double lr = o.LearningRate!.Value, mu = o.Momentum!.Value;
        var (rows, cols) = MatrixShape(param.shape);
        var buffer = state.Slot(MuonState.M);
        buffer.lerp_(grad, 1 - mu);
        var update = state.Scratch(MuonState.Update);
        var u = o.Nesterov!.Value ? update.copy_(grad).lerp_(buffer, mu) : buffer;
        if (rows * cols == 0) return new Proposal(update, 0, paramDecay: -lr * o.WeightDecay!.Value);
        using (var scope = torch.NewDisposeScope()) {
            var dtype = o.NsPrecision!.Value switch {
                NewtonSchulzPrecision.ParameterDtype => param.dtype,
                NewtonSchulzPrecision.Bf16 => ScalarType.BFloat16,
                _ => ScalarType.Float32,
            };
            var orthogonal = NewtonSchulz(u.reshape(rows, cols), o.NsSteps!.Value, o.NsCoefficientA!.Value, o.NsCoefficientB!.Value,
                o.NsCoefficientC!.Value, o.Epsilon!.Value, dtype);
            update.copy_(orthogonal.view(param.shape));
        }
        double s = SizeFactor(o.SizeRule!.Value, rows, cols);
        return new Proposal(update, -lr * s, paramDecay: -lr * o.WeightDecay!.Value);
    }

    private static Proposal ProposeAdamW(MuonOptions o, MuonState state, Tensor grad)
    {
        long t = ++state.Step;
        double lr = o.LearningRate!.Value, beta1 = o.AdamBeta1!.Value, beta2 = o.AdamBeta2!.Value, eps = o.AdamEpsilon!.Value;
        var m = state.Slot(MuonState.M);
        var v = state.Slot(MuonState.V);
        RuleSteps.UpdateMoments(m, v, grad, beta1, beta2);
        var (bc1, bc2) = SecondMomentRule.HostBias(t, beta1, beta2);
        double sqrtBc2 = Math.Sqrt(bc2);
        // √(v/bc2) + ε = (√v + ε·√bc2)/√bc2, so bias correction costs no extra pass.
        return RuleSteps.OverRoot(state, MuonState.Denominator, v, m, -lr * sqrtBc2 / bc1, eps, sqrtBc2, -lr * o.AdamWeightDecay!.Value);
    }
}
