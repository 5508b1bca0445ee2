using System.Globalization;

namespace AdaGraft.Rules;

/// <summary>Hyperparameters of <see cref="SoapRule"/> (one parameter group). Unset values inherit the optimizer's defaults.</summary>
public sealed class SoapOptions : RuleOptions, Optimizers.IMomentOptions
{
    /// <summary>β1, Adam's first-moment decay in the eigenbasis, in [0, 1) (the reference: 0.95).</summary>
    public double? Beta1 { get; set; }

    /// <summary>β2, Adam's second-moment decay in the eigenbasis, in [0, 1) (the reference: 0.95).</summary>
    public double? Beta2 { get; set; }

    /// <summary>
    /// The decay of Shampoo's factors L and R (<c>F ← β·F + (1−β)·G·Gᵀ</c>), in [0, 1). <c>SoapOptimizer.Create</c>
    /// sets it to β2 unless given (the reference's <c>shampoo_beta = -1</c>); a group that sets its own
    /// <see cref="Beta2"/> and wants the same here sets this too.
    /// </summary>
    public double? ShampooBeta { get; set; }

    /// <summary>ε ≥ 0 added to √v (uncorrected, as the reference does); 0 is the pseudoinverse (a zero v does not move).</summary>
    public double? Epsilon { get; set; }

    /// <summary>Decoupled weight decay λ ≥ 0, applied after the step as the reference does: <c>w ← (w − s·u)·(1 − η·λ)</c>.</summary>
    public double? WeightDecay { get; set; }

    /// <summary>Steps between two refreshes of the eigenbasis (one power iteration and a QR), ≥ 1 (the reference: 10).</summary>
    public int? PreconditionFrequency { get; set; }

    /// <summary>Dimensions larger than this get no factor and no basis (identity), ≥ 1 (the reference: 10000).</summary>
    public int? MaxPreconditionerDim { get; set; }

    /// <summary>Merge neighbouring dimensions of tensors of rank ≥ 2 while their product stays within <see cref="MaxPreconditionerDim"/>.</summary>
    public bool? MergeDims { get; set; }

    /// <summary>Give vectors (rank 1) a factor and a basis too; off: vectors are stepped by plain Adam.</summary>
    public bool? Precondition1D { get; set; }

    /// <summary>Divide each tensor's update by its RMS (plus 1e-30) before the step.</summary>
    public bool? NormalizeGrads { get; set; }

    /// <summary>Adam's bias correction (step size <c>η·√(1−β2^t)/(1−β1^t)</c>).</summary>
    public bool? CorrectBias { get; set; }

    /// <summary>
    /// Hold the eigenbasis at the identity: no factors, no eigendecomposition, no initialisation step. SOAP is then
    /// Adam with SOAP's ε placement and decay order (a check of everything but the basis; not in the reference).
    /// </summary>
    public bool? IdentityBasis { get; set; }

    /// <inheritdoc />
    public override void Validate()
    {
        ValidateLearningRate();
        RequireInRange(Beta1, 0, 1, hiOpen: true, "beta1", "use e.g. 0.95.");
        RequireInRange(Beta2, 0, 1, hiOpen: true, "beta2", "use e.g. 0.95.");
        RequireInRange(ShampooBeta, 0, 1, hiOpen: true, "shampoo_beta", "use e.g. 0.95, or leave it unset to use beta2.");
        RequireAtLeast(Epsilon, 0, "eps", "use e.g. 1e-8.");
        RequireAtLeast(WeightDecay, 0, "weight_decay", "use 0 for none.");
        RequirePositive(PreconditionFrequency, "precondition_frequency", "use e.g. 10 (steps between refreshes of the eigenbasis); to hold the basis at the identity set identity_basis.");
        RequirePositive(MaxPreconditionerDim, "max_precond_dim", "use e.g. 10000 (larger dimensions are not preconditioned).");
    }

    private static void RequirePositive(int? value, string name, string fix)
    {
        if (value is int v && v < 1)
            throw new ArgumentOutOfRangeException(name, v, $"{name} must be ≥ 1; {fix}");
    }
}

/// <summary>
/// Per-tensor state of SOAP: slots <c>exp_avg</c> (Adam's first moment, in the eigenbasis), <c>exp_avg_sq</c> (the
/// second moment, in the eigenbasis), and per dimension d of the <see cref="Layout"/> with a basis <c>factor{d}</c>
/// (Shampoo's L, R, …: n_d × n_d) and <c>basis{d}</c> (its eigenbasis Q_d, orthonormal columns by decreasing
/// eigenvalue). The layout is fixed when the state is built; a group whose options imply another one raises before the step.
/// </summary>
public sealed class SoapState : RuleState
{
    internal const int M = 0, V = 1, Update = 0;
    private SoapOptions? _options;
    private SoapLayout? _layout;

    /// <summary>Creates the state of <paramref name="parameter"/>.</summary>
    public SoapState(Parameter parameter) : base(parameter, SlotNamesFor(parameter), 1)
    {
    }

    private static string[] SlotNamesFor(Parameter parameter)
    {
        ArgumentNullException.ThrowIfNull(parameter);
        var names = new List<string> { "exp_avg", "exp_avg_sq" };
        for (int d = 0; d < Math.Max(1, parameter.shape.Length); d++) {
            names.Add("factor" + d.ToString(CultureInfo.InvariantCulture));
            names.Add("basis" + d.ToString(CultureInfo.InvariantCulture));
        }
        return names.ToArray();
    }

    /// <summary>The preconditioner's view of this tensor (fixed when the state was built).</summary>
    public SoapLayout Layout => _layout ?? throw new InvalidOperationException("The SOAP state was not initialised with options.");

    /// <summary>Adam's first moment, in the eigenbasis (null before the first step).</summary>
    public Tensor? FirstMoment => GetSlot(M);

    /// <summary>Adam's second moment, in the eigenbasis (null before the first step).</summary>
    public Tensor? SecondMoment => GetSlot(V);

    /// <summary>Shampoo's factor of dimension <paramref name="dim"/> of the <see cref="Layout"/> (null without one).</summary>
    public Tensor? Factor(int dim) => GetSlot(2 + 2 * dim);

    /// <summary>The eigenbasis of dimension <paramref name="dim"/> of the <see cref="Layout"/> (null without one).</summary>
    public Tensor? Basis(int dim) => GetSlot(3 + 2 * dim);

    /// <inheritdoc />
    public override void Initialize(OptimizerOptions options)
    {
        _options = Restart<SoapOptions>(options);
        _layout = SoapLayout.For(Parameter.shape, _options);
    }

    /// <inheritdoc />
    protected override bool SlotsShapedLikeParameter => false;

    /// <inheritdoc />
    protected override long[] ExpectedSlotShape(int index)
    {
        if (index < 2) return base.ExpectedSlotShape(index);
        int d = (index - 2) / 2;
        var layout = Layout;
        return d < layout.Shape.Length && layout.Preconditioned[d] ? new[] { layout.Shape[d], layout.Shape[d] } : new long[] { 0, 0 };
    }

    /// <inheritdoc />
    protected override void CheckStructure(int index)
    {
        if (_options is null) return;
        var wanted = SoapLayout.For(Parameter.shape, _options);
        if (wanted.Equals(_layout)) return;
        if (Step == 0) {
            _layout = wanted; // nothing was built on the old layout yet
            return;
        }
        throw new InvalidOperationException(
            $"The SOAP state of the {TensorLayout.Describe(Parameter, index)} was built for the layout {_layout}, but its group's options "
            + $"(max_precond_dim, merge_dims, precondition_1d, identity_basis) now give {wanted}. Restore those options, or build a new optimizer.");
    }

    /// <inheritdoc />
    protected override void CheckLoadedSlots(long steps, Tensor?[] slots)
    {
        ArgumentNullException.ThrowIfNull(slots);
        var layout = Layout;
        for (int i = 0; i < slots.Length; i++) {
            int d = (i - 2) / 2;
            bool wanted = steps > 0 && (i < 2 || (d < layout.Shape.Length && layout.Preconditioned[d]));
            if (wanted == slots[i] is not null) continue;
            throw new InvalidDataException(
                $"The saved SOAP state of a parameter of shape {TensorLayout.Shape(Parameter.shape)} after {steps} steps "
                + $"{(wanted ? "lacks" : "has")} slot '{SlotNames[i]}', but this optimizer's layout is {layout}: the file was saved "
                + "with other max_precond_dim, merge_dims, precondition_1d or identity_basis. Load it into an optimizer built with the file's.");
        }
    }

    internal Tensor FactorSlot(int dim) => EnsureSlot(2 + 2 * dim);

    internal Tensor BasisSlot(int dim) => EnsureSlot(3 + 2 * dim);
}

/// <summary>
/// SOAP (Vyas, Morwani, Zhao, Kwun, Shapira, Brandfonbrener, Janson and Kakade, 2024, "SOAP: Improving and
/// Stabilizing Shampoo using Adam"): Adam run in the eigenbasis of Shampoo's factors, which is refreshed every few steps.
/// </summary>
/// <remarks>
/// <para>For a matrix gradient G (more dimensions: one factor and basis per dimension of the <see cref="SoapLayout"/>;
/// a dimension above <c>max_precond_dim</c> keeps the identity):</para>
/// <code>
/// step 1:  L ← (1−β_s)·G·Gᵀ, R ← (1−β_s)·Gᵀ·G; Q_L, Q_R = eigenvectors (eigh, decreasing eigenvalue); no parameter change
/// step t+1 (Adam step t):
///   G' = Q_Lᵀ·G·Q_R                                   into the eigenbasis
///   m ← β1·m + (1−β1)·G',  v ← β2·v + (1−β2)·G'²     (m and v live in the eigenbasis)
///   u = Q_L·(m / (√v + ε))·Q_Rᵀ                        back; u ← u / (RMS(u) + 1e-30) with normalize_grads
///   w ← (w − η·√(1−β2^t)/(1−β1^t)·u)·(1 − η·λ)         (η·u without correct_bias)
///   L ← β_s·L + (1−β_s)·G·Gᵀ,  R ← β_s·R + (1−β_s)·Gᵀ·G
///   every precondition_frequency Adam steps, per basis Q with factor F:
///     order = argsort(diag(Qᵀ·F·Q), decreasing); v's entries along that dimension follow order;
///     Q ← qr(F·Q[:, order]).Q;  m is carried into the new basis (m ← Q_newᵀ·Q_old·m per dimension)
/// </code>
/// <para>Where this differs from the reference (nikhilvyas/SOAP <c>soap.py</c>), and why:</para>
/// <list type="bullet">
/// <item>Factors and bases are kept in the parameter's dtype, and the eigendecomposition and QR run in at least
/// float32: a float64 parameter gets float64 factors and bases. The reference creates its factors in the default dtype
/// (float32) and refreshes in float32 whatever the parameter is; float64 here makes the float64 tests exact.</item>
/// <item>m is carried into a new basis only when the basis changes (every <c>precondition_frequency</c> steps); the
/// reference projects it back and forth every step, which is the same up to rounding (Q is orthonormal) at twice the matmuls.</item>
/// <item>Weight decay <c>(w − s·u)·(1 − η·λ)</c> is applied as one step <c>−s·(1−η·λ)·u − η·λ·w</c>: the same in exact arithmetic.</item>
/// <item><c>shampoo_beta</c> unset means β2 (the reference's −1); <c>data_format</c> (channels-last 4-D weights) is not
/// offered (TorchSharp's convolution weights are channels-first); ε = 0 is the pseudoinverse instead of NaN.</item>
/// <item><c>identity_basis</c> (not in the reference) holds every basis at the identity with no initialisation
/// step: SOAP is then Adam with ε added to the uncorrected √v and the decay after the step.</item>
/// <item>When an eigendecomposition fails in float32 and in float64, the basis starts at the identity (the
/// reference raises); the QR refreshes improve it from there.</item>
/// </list>
/// <para>As in the reference, the first step of each tensor only builds its factors and bases (the parameter does not
/// move, and in a graft that step proposes nothing), so that a basis never contains the gradient it rotates.</para>
/// <para>Host synchronisation: the first step's eigendecomposition (<c>torch.linalg.eigh</c> checks that it
/// converged, which a CUDA device reports to the host; unavoidable, once per tensor). The refreshes (matmul, argsort,
/// index_select, QR) need no value on the host and the step reads none; whether libtorch's CUDA QR itself waits for
/// the device depends on its backend (cuSOLVER or MAGMA) and was not measured. Skipping non-finite steps
/// (<c>SkipNonFiniteSteps</c>) is not supported (a skipped first step would leave no basis): the step raises
/// <see cref="NotSupportedException"/> before changing anything.</para>
/// </remarks>
public sealed class SoapRule : IRule<SoapOptions, SoapState>
{
    private SoapRule() { }

    /// <inheritdoc />
    public static SoapState NewState(Parameter parameter) => new(parameter);

    /// <summary>Advances <paramref name="state"/> with <paramref name="grad"/> and returns the step for <paramref name="param"/>.</summary>
    public static Proposal Propose(SoapOptions o, SoapState state, Tensor param, Tensor grad)
    {
        RuleSteps.Check(o, state);
        ArgumentNullException.ThrowIfNull(grad);
        if (state.AppliedSteps is not null)
            throw new NotSupportedException("SOAP does not support SkipNonFiniteSteps: a skipped first step would leave the tensor without an eigenbasis. Turn SkipNonFiniteSteps off.");
        bool identity = o.IdentityBasis!.Value;
        long calls = ++state.Step;
        var m = state.Slot(SoapState.M);
        var v = state.Slot(SoapState.V);
        double shampooBeta = o.ShampooBeta!.Value;
        if (!identity && calls == 1) {
            SoapBasis.UpdateFactors(grad, state, shampooBeta);
            SoapBasis.InitializeBases(state);
            return new Proposal(state.Scratch(SoapState.Update).zero_(), 0);
        }

        long t = identity ? calls : calls - 1;
        double lr = o.LearningRate!.Value, beta1 = o.Beta1!.Value, beta2 = o.Beta2!.Value, eps = o.Epsilon!.Value;
        var projected = SoapBasis.Rotate(grad, state, back: false);
        m.mul_(beta1).add_(projected, 1 - beta1);
        v.mul_(beta2).addcmul_(projected, projected, 1 - beta2);
        var denominator = v.sqrt().add_(eps);
        var ratio = m / denominator;
        if (eps == 0) ratio = torch.where(denominator.eq(0), torch.zeros_like(ratio), ratio);
        var u = state.Scratch(SoapState.Update).copy_(SoapBasis.Rotate(ratio, state, back: true));
        if (o.NormalizeGrads!.Value) u.div_(u.square().mean().sqrt_().add_(1e-30));

        double stepSize = lr;
        if (o.CorrectBias!.Value) stepSize *= Math.Sqrt(1 - Math.Pow(beta2, t)) / (1 - Math.Pow(beta1, t));
        double decay = lr * o.WeightDecay!.Value;

        if (state.Layout.Any) {
            SoapBasis.UpdateFactors(grad, state, shampooBeta);
            if (t % o.PreconditionFrequency!.Value == 0) SoapBasis.Refresh(state, m, v);
        }
        return new Proposal(u, -stepSize * (1 - decay), paramDecay: -decay);
    }
}
