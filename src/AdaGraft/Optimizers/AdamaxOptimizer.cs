namespace AdaGraft.Optimizers;

/// <summary>
/// Adamax as a TorchSharp optimizer, a drop-in for <c>torch.optim.Adamax</c> (same argument names, order, defaults and
/// numbers); see <see cref="AdamaxRule"/> for the update. Build it with <c>Create</c>. Usable standalone and as
/// M or D of a closed-form graft; contiguous float32/float64 CPU tensors take a fused step (<see cref="FusedCpuKernel"/>).
/// </summary>
public sealed class AdamaxOptimizer : MomentRuleOptimizer<AdamaxOptions, AdamaxState, AdamaxRule>
{
    /// <summary>Creates the optimizer over <paramref name="parameters"/> with <paramref name="options"/> (every option must be set).</summary>
    public AdamaxOptimizer(IEnumerable<Parameter> parameters, AdamaxOptions options)
        : base(parameters, options) { }

    /// <summary>Creates the optimizer over parameter groups; unset group options come from <paramref name="defaults"/>.</summary>
    public AdamaxOptimizer(IEnumerable<MomentParamGroup<AdamaxOptions>> groups, AdamaxOptions defaults)
        : base(groups, defaults) { }

    /// <summary>Options with every hyperparameter set (TorchSharp's defaults).</summary>
    public static AdamaxOptions DefaultOptions(double lr = 0.002, double beta1 = 0.9, double beta2 = 0.999, double eps = 1e-8, double weight_decay = 0) => new() {
        LearningRate = lr,
        Beta1 = beta1,
        Beta2 = beta2,
        Epsilon = eps,
        WeightDecay = weight_decay,
    };

    /// <summary>Reproduces <c>torch.optim.Adamax(parameters, lr, beta1, beta2, eps, weight_decay)</c>.</summary>
    public static AdamaxOptimizer Create(IEnumerable<Parameter> parameters, double lr = 0.002, double beta1 = 0.9, double beta2 = 0.999, double eps = 1e-8, double weight_decay = 0)
        => new(parameters, DefaultOptions(lr, beta1, beta2, eps, weight_decay));

    /// <summary>The same preset over parameter groups: unset group options take these arguments.</summary>
    public static AdamaxOptimizer Create(IEnumerable<MomentParamGroup<AdamaxOptions>> parameters, double lr = 0.002, double beta1 = 0.9, double beta2 = 0.999, double eps = 1e-8, double weight_decay = 0)
        => new(parameters, DefaultOptions(lr, beta1, beta2, eps, weight_decay));

    /// <inheritdoc cref="GenericSecondMomentOptimizer.FusedCpuKernel" />
    public bool FusedCpuKernel { get; set; } = true;

    /// <inheritdoc />
    private protected override bool PacksSlots => true;

    /// <inheritdoc />
    protected override bool[]? TryFusedSteps(IReadOnlyList<TensorStep> tensors) => FusedSteps(FusedCpuKernel, tensors, AdamaxRule.Plan, FusedParts.Chunk<AdamaxPlan, AdamaxRule.Kernel<float>, AdamaxRule.Kernel<double>>);
}
