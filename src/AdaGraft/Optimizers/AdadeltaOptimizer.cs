namespace AdaGraft.Optimizers;

/// <summary>
/// Adadelta as a TorchSharp optimizer, a drop-in for <c>torch.optim.Adadelta</c> (same argument names, order, defaults
/// and numbers); see <see cref="AdadeltaRule"/> for the update. Build it with <c>Create</c>. Usable standalone and
/// as M or D of a closed-form graft; contiguous float32/float64 CPU tensors take a fused step (<see cref="FusedCpuKernel"/>).
/// </summary>
public sealed class AdadeltaOptimizer : RuleOptimizer<AdadeltaOptions, AdadeltaState, AdadeltaRule>
{
    /// <summary>A parameter group with its own options; unset options inherit the optimizer's.</summary>
    public sealed class ParamGroup : ParamGroup<AdadeltaOptions>
    {
        /// <summary>An empty group (set <c>Parameters</c>).</summary>
        public ParamGroup() { }

        /// <summary>A group over <paramref name="parameters"/> with <paramref name="options"/> (null: all inherited).</summary>
        public ParamGroup(IEnumerable<Parameter> parameters, AdadeltaOptions? options = null) : base(parameters, options ?? new AdadeltaOptions()) { }
    }

    /// <summary>Creates the optimizer over <paramref name="parameters"/> with <paramref name="options"/> (every option must be set).</summary>
    public AdadeltaOptimizer(IEnumerable<Parameter> parameters, AdadeltaOptions options)
        : base(new[] { new ParamGroup(NotNull(parameters)) }, options) { }

    /// <summary>Creates the optimizer over parameter groups; unset group options come from <paramref name="defaults"/>.</summary>
    public AdadeltaOptimizer(IEnumerable<ParamGroup> groups, AdadeltaOptions defaults)
        : base(groups, defaults) { }

    private static IEnumerable<Parameter> NotNull(IEnumerable<Parameter> parameters)
    {
        System.ArgumentNullException.ThrowIfNull(parameters);
        return parameters;
    }

    /// <summary>Options with every hyperparameter set (TorchSharp's defaults).</summary>
    public static AdadeltaOptions DefaultOptions(double lr = 1.0, double rho = 0.9, double eps = 1e-6, double weight_decay = 0, bool maximize = false) => new() {
        LearningRate = lr,
        Rho = rho,
        Epsilon = eps,
        WeightDecay = weight_decay,
        Maximize = maximize,
    };

    /// <summary>Reproduces <c>torch.optim.Adadelta(parameters, lr, rho, eps, weight_decay, maximize)</c>.</summary>
    public static AdadeltaOptimizer Create(IEnumerable<Parameter> parameters, double lr = 1.0, double rho = 0.9, double eps = 1e-6, double weight_decay = 0, bool maximize = false)
        => new(parameters, DefaultOptions(lr, rho, eps, weight_decay, maximize));

    /// <summary>The same preset over parameter groups: unset group options take these arguments.</summary>
    public static AdadeltaOptimizer Create(IEnumerable<ParamGroup> parameters, double lr = 1.0, double rho = 0.9, double eps = 1e-6, double weight_decay = 0, bool maximize = false)
        => new(parameters, DefaultOptions(lr, rho, eps, weight_decay, maximize));

    /// <inheritdoc cref="GenericSecondMomentOptimizer.FusedCpuKernel" />
    public bool FusedCpuKernel { get; set; } = true;

    /// <inheritdoc />
    private protected override bool PacksSlots => true;

    /// <inheritdoc />
    protected override bool[]? TryFusedSteps(IReadOnlyList<TensorStep> tensors) => FusedSteps(FusedCpuKernel, tensors, AdadeltaRule.Plan, FusedParts.Chunk<AdadeltaPlan, AdadeltaRule.Kernel<float>, AdadeltaRule.Kernel<double>>);
}
