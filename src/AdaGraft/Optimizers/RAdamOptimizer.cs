namespace AdaGraft.Optimizers;

/// <summary>
/// RAdam as a TorchSharp optimizer, a drop-in for <c>torch.optim.RAdam</c> (same argument names, order, defaults and
/// numbers); see <see cref="RAdamRule"/> for the update. Build it with <c>Create</c> (TorchSharp's numbers) or
/// <c>CreatePaper</c> (PyTorch's and the paper's). Usable standalone and as M or D of a closed-form graft;
/// contiguous float32/float64 CPU tensors take a fused step (<see cref="FusedCpuKernel"/>).
/// </summary>
public sealed class RAdamOptimizer : MomentRuleOptimizer<RAdamOptions, RAdamState, RAdamRule>
{
    /// <summary>Creates the optimizer over <paramref name="parameters"/> with <paramref name="options"/> (every option must be set).</summary>
    public RAdamOptimizer(IEnumerable<Parameter> parameters, RAdamOptions options)
        : base(parameters, options) { }

    /// <summary>Creates the optimizer over parameter groups; unset group options come from <paramref name="defaults"/>.</summary>
    public RAdamOptimizer(IEnumerable<MomentParamGroup<RAdamOptions>> groups, RAdamOptions defaults)
        : base(groups, defaults) { }

    /// <summary>Options with every hyperparameter set (TorchSharp's defaults and numbers).</summary>
    public static RAdamOptions DefaultOptions(double lr = 0.002, double beta1 = 0.9, double beta2 = 0.999, double eps = 1e-8, double weight_decay = 0) => new() {
        LearningRate = lr,
        Beta1 = beta1,
        Beta2 = beta2,
        Epsilon = eps,
        WeightDecay = weight_decay,
        LearningRateSquaredWhenRectified = true,
    };

    /// <summary>
    /// Reproduces <c>torch.optim.RAdam(parameters, lr, beta1, beta2, eps, weight_decay)</c> of TorchSharp 0.107, whose
    /// rectified steps (after the first few) are scaled by η² instead of η; <c>CreatePaper</c> uses η, as PyTorch does.
    /// </summary>
    public static RAdamOptimizer Create(IEnumerable<Parameter> parameters, double lr = 0.002, double beta1 = 0.9, double beta2 = 0.999, double eps = 1e-8, double weight_decay = 0)
        => new(parameters, DefaultOptions(lr, beta1, beta2, eps, weight_decay));

    /// <summary>The same preset over parameter groups: unset group options take these arguments.</summary>
    public static RAdamOptimizer Create(IEnumerable<MomentParamGroup<RAdamOptions>> parameters, double lr = 0.002, double beta1 = 0.9, double beta2 = 0.999, double eps = 1e-8, double weight_decay = 0)
        => new(parameters, DefaultOptions(lr, beta1, beta2, eps, weight_decay));

    /// <summary>RAdam as PyTorch's <c>torch.optim.RAdam</c> and the paper compute it (the rectified step scaled by η once).</summary>
    public static RAdamOptimizer CreatePaper(IEnumerable<Parameter> parameters, double lr = 0.001, double beta1 = 0.9, double beta2 = 0.999, double eps = 1e-8, double weight_decay = 0)
    {
        var o = DefaultOptions(lr, beta1, beta2, eps, weight_decay);
        o.LearningRateSquaredWhenRectified = false;
        return new(parameters, o);
    }

    /// <summary>The same preset over parameter groups: unset group options take these arguments.</summary>
    public static RAdamOptimizer CreatePaper(IEnumerable<MomentParamGroup<RAdamOptions>> parameters, double lr = 0.001, double beta1 = 0.9, double beta2 = 0.999, double eps = 1e-8, double weight_decay = 0)
    {
        var o = DefaultOptions(lr, beta1, beta2, eps, weight_decay);
        o.LearningRateSquaredWhenRectified = false;
        return new(parameters, o);
    }

    /// <inheritdoc cref="GenericSecondMomentOptimizer.FusedCpuKernel" />
    public bool FusedCpuKernel { get; set; } = true;

    /// <inheritdoc />
    private protected override bool PacksSlots => true;

    /// <inheritdoc />
    protected override bool[]? TryFusedSteps(IReadOnlyList<TensorStep> tensors) => FusedSteps(FusedCpuKernel, tensors, RAdamRule.Plan, FusedParts.Chunk<RAdamPlan, RAdamRule.Kernel<float>, RAdamRule.Kernel<double>>);
}
