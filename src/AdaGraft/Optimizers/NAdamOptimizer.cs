namespace AdaGraft.Optimizers;

/// <summary>
/// NAdam as a TorchSharp optimizer, a drop-in for <c>torch.optim.NAdam</c> (same argument names, order, defaults and
/// numbers); see <see cref="NAdamRule"/> for the update. Build it with <c>Create</c>. Usable standalone and as
/// M or D of a closed-form graft; contiguous float32/float64 CPU tensors take a fused step (<see cref="FusedCpuKernel"/>).
/// </summary>
public sealed class NAdamOptimizer : MomentRuleOptimizer<NAdamOptions, NAdamState, NAdamRule>
{
    /// <summary>Creates the optimizer over <paramref name="parameters"/> with <paramref name="options"/> (every option must be set).</summary>
    public NAdamOptimizer(IEnumerable<Parameter> parameters, NAdamOptions options)
        : base(parameters, options) { }

    /// <summary>Creates the optimizer over parameter groups; unset group options come from <paramref name="defaults"/>.</summary>
    public NAdamOptimizer(IEnumerable<MomentParamGroup<NAdamOptions>> groups, NAdamOptions defaults)
        : base(groups, defaults) { }

    /// <summary>Options with every hyperparameter set (TorchSharp's defaults).</summary>
    public static NAdamOptions DefaultOptions(double lr = 0.002, double beta1 = 0.9, double beta2 = 0.999, double eps = 1e-8, double weight_decay = 0, double momentum_decay = 0.004) => new() {
        LearningRate = lr,
        Beta1 = beta1,
        Beta2 = beta2,
        Epsilon = eps,
        WeightDecay = weight_decay,
        MomentumDecay = momentum_decay,
    };

    /// <summary>
    /// Reproduces <c>torch.optim.NAdam(named_parameters, lr, beta1, beta2, eps, weight_decay, momentum_decay)</c>; the first
    /// argument is a parameter list, named <c>named_parameters</c> as in TorchSharp 0.107's factory.
    /// </summary>
    public static NAdamOptimizer Create(IEnumerable<Parameter> named_parameters, double lr = 0.002, double beta1 = 0.9, double beta2 = 0.999, double eps = 1e-8, double weight_decay = 0, double momentum_decay = 0.004)
        => new(named_parameters, DefaultOptions(lr, beta1, beta2, eps, weight_decay, momentum_decay));

    /// <summary>The same preset over parameter groups: unset group options take these arguments.</summary>
    public static NAdamOptimizer Create(IEnumerable<MomentParamGroup<NAdamOptions>> parameters, double lr = 0.002, double beta1 = 0.9, double beta2 = 0.999, double eps = 1e-8, double weight_decay = 0, double momentum_decay = 0.004)
        => new(parameters, DefaultOptions(lr, beta1, beta2, eps, weight_decay, momentum_decay));

    /// <inheritdoc cref="GenericSecondMomentOptimizer.FusedCpuKernel" />
    public bool FusedCpuKernel { get; set; } = true;

    /// <inheritdoc />
    private protected override bool PacksSlots => true;

    /// <inheritdoc />
    protected override bool[]? TryFusedSteps(IReadOnlyList<TensorStep> tensors) => FusedSteps(FusedCpuKernel, tensors, NAdamRule.Plan, FusedParts.Chunk<NAdamPlan, NAdamRule.Kernel<float>, NAdamRule.Kernel<double>>);
}
