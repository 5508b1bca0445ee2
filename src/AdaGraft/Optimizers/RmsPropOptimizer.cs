namespace AdaGraft.Optimizers;

/// <summary>
/// RMSprop as TorchSharp's <c>torch.optim.RMSProp</c> computes it, centered or not (same argument names, order,
/// defaults and numbers); see <see cref="RmsPropRule"/> for the update. Build it with <c>Create</c> or
/// <c>CenteredRmsProp</c>. Schedulers that cycle momentum set μ (<c>IMomentum</c>; as betas: (μ, α)). Usable
/// standalone and as M or D of a closed-form graft; contiguous float32/float64 CPU tensors take a fused step
/// (<see cref="FusedCpuKernel"/>).
/// </summary>
public sealed class RmsPropOptimizer : MomentRuleOptimizer<RmsPropOptions, RmsPropState, RmsPropRule>
{
    /// <summary>Creates the optimizer over <paramref name="parameters"/> with <paramref name="options"/> (every option must be set).</summary>
    public RmsPropOptimizer(IEnumerable<Parameter> parameters, RmsPropOptions options)
        : base(parameters, options) { }

    /// <summary>Creates the optimizer over parameter groups; unset group options come from <paramref name="defaults"/>.</summary>
    public RmsPropOptimizer(IEnumerable<MomentParamGroup<RmsPropOptions>> groups, RmsPropOptions defaults)
        : base(groups, defaults) { }

    /// <summary>Options with every hyperparameter set (TorchSharp's defaults).</summary>
    public static RmsPropOptions DefaultOptions(double lr = 0.01, double alpha = 0.99, double eps = 1e-8, double weight_decay = 0, double momentum = 0, bool centered = false, bool maximize = false) => new() {
        LearningRate = lr,
        Alpha = alpha,
        Epsilon = eps,
        WeightDecay = weight_decay,
        Momentum = momentum,
        Centered = centered,
        Maximize = maximize,
    };

    /// <summary>Reproduces <c>torch.optim.RMSProp(parameters, lr, alpha, eps, weight_decay, momentum, centered, maximize)</c>.</summary>
    public static RmsPropOptimizer Create(IEnumerable<Parameter> parameters, double lr = 0.01, double alpha = 0.99, double eps = 1e-8, double weight_decay = 0, double momentum = 0, bool centered = false, bool maximize = false)
        => new(parameters, DefaultOptions(lr, alpha, eps, weight_decay, momentum, centered, maximize));

    /// <summary>The same preset over parameter groups: unset group options take these arguments.</summary>
    public static RmsPropOptimizer Create(IEnumerable<MomentParamGroup<RmsPropOptions>> parameters, double lr = 0.01, double alpha = 0.99, double eps = 1e-8, double weight_decay = 0, double momentum = 0, bool centered = false, bool maximize = false)
        => new(parameters, DefaultOptions(lr, alpha, eps, weight_decay, momentum, centered, maximize));

    /// <summary>
    /// Centered RMSprop: reproduces <c>torch.optim.RMSProp(parameters, lr, alpha, eps, weight_decay, momentum, centered: true, maximize)</c>
    /// (the same argument names as <c>GenericSecondMomentOptimizer.TorchRmsProp</c>, without <c>centered</c>).
    /// </summary>
    public static RmsPropOptimizer CenteredRmsProp(IEnumerable<Parameter> parameters, double lr = 0.01, double alpha = 0.99, double eps = 1e-8, double weight_decay = 0, double momentum = 0, bool maximize = false)
        => Create(parameters, lr, alpha, eps, weight_decay, momentum, centered: true, maximize: maximize);

    /// <summary>The same preset over parameter groups: unset group options take these arguments.</summary>
    public static RmsPropOptimizer CenteredRmsProp(IEnumerable<MomentParamGroup<RmsPropOptions>> parameters, double lr = 0.01, double alpha = 0.99, double eps = 1e-8, double weight_decay = 0, double momentum = 0, bool maximize = false)
        => Create(parameters, lr, alpha, eps, weight_decay, momentum, centered: true, maximize: maximize);

    /// <inheritdoc cref="GenericSecondMomentOptimizer.FusedCpuKernel" />
    public bool FusedCpuKernel { get; set; } = true;

    /// <inheritdoc />
    private protected override bool PacksSlots => true;

    /// <inheritdoc />
    protected override bool[]? TryFusedSteps(IReadOnlyList<TensorStep> tensors) => FusedSteps(FusedCpuKernel, tensors, RmsPropRule.Plan, FusedParts.Chunk<RmsPropPlan, RmsPropRule.Kernel<float>, RmsPropRule.Kernel<double>>);
}
