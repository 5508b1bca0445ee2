namespace AdaGraft.Optimizers;

/// <summary>
/// Shampoo with per-block grafting (Gupta, Koren and Singer, 2018; Shi et al., 2023) as a TorchSharp optimizer; see
/// <see cref="ShampooRule"/> for the update. Build it with <c>Create</c>. Usable standalone and as either child (M or D)
/// of a closed-form <see cref="Grafting.GraftOptimizer"/>.
/// </summary>
/// <remarks>
/// Host synchronisation: only on the steps that compute roots (every <c>precondition_frequency</c> steps), to detect
/// failed eigendecompositions; every other step enqueues its work without waiting for the device.
/// </remarks>
public sealed class ShampooOptimizer : MomentRuleOptimizer<ShampooOptions, ShampooState, ShampooRule>
{
    /// <inheritdoc cref="MomentRuleOptimizer{TOptions, TState, TRule}(IEnumerable{Parameter}, TOptions)" />
    public ShampooOptimizer(IEnumerable<Parameter> parameters, ShampooOptions options) : base(parameters, options) { }

    /// <inheritdoc cref="MomentRuleOptimizer{TOptions, TState, TRule}(IEnumerable{MomentParamGroup{TOptions}}, TOptions)" />
    public ShampooOptimizer(IEnumerable<MomentParamGroup<ShampooOptions>> groups, ShampooOptions defaults) : base(groups, defaults) { }

    /// <summary>Failed root computations over every tensor (each kept its previous root); read on the host, no synchronisation.</summary>
    public long RootFailures => Groups.SelectMany(g => g.Parameters).Sum(p => StateOf(p).RootFailures);

    /// <summary>Options with every hyperparameter set (the defaults of <c>Create</c>).</summary>
    public static ShampooOptions DefaultOptions(double lr = 1e-2, double beta1 = 0, double beta2 = 1, double epsilon = 1e-12,
        double momentum = 0, bool nesterov = false, double weight_decay = 0, bool use_decoupled_weight_decay = true,
        int max_preconditioner_dim = 1024, int precondition_frequency = 1, long start_preconditioning_step = 1,
        double exponent_override = 0, int skip_preconditioning_dim_size_gt = 0, ShampooGrafting grafting = ShampooGrafting.AdaGrad,
        double grafting_epsilon = 1e-10, double grafting_beta2 = 0.999) => new() {
            LearningRate = lr,
            Beta1 = beta1,
            Beta2 = beta2,
            Epsilon = epsilon,
            Momentum = momentum,
            Nesterov = nesterov,
            WeightDecay = weight_decay,
            DecoupledWeightDecay = use_decoupled_weight_decay,
            MaxPreconditionerDim = max_preconditioner_dim,
            PreconditionFrequency = precondition_frequency,
            StartPreconditioningStep = start_preconditioning_step,
            ExponentOverride = exponent_override,
            SkipPreconditioningDimSizeGt = skip_preconditioning_dim_size_gt,
            Grafting = grafting,
            GraftingEpsilon = grafting_epsilon,
            GraftingBeta2 = grafting_beta2,
        };

    /// <summary>
    /// Shampoo with Distributed Shampoo's argument names: AdaGrad grafting (ε_g = 1e-10), sums of G·Gᵀ (β2 = 1), roots
    /// every step from step 1 with ε = 1e-12, blocks of at most 1024 per side. <c>start_preconditioning_step:
    /// long.MaxValue</c> never preconditions (the grafting method alone, e.g. <c>torch.optim.Adam</c> with
    /// <c>grafting: Adam</c>).
    /// </summary>
    public static ShampooOptimizer Create(IEnumerable<Parameter> parameters, double lr = 1e-2, double beta1 = 0, double beta2 = 1,
        double epsilon = 1e-12, double momentum = 0, bool nesterov = false, double weight_decay = 0, bool use_decoupled_weight_decay = true,
        int max_preconditioner_dim = 1024, int precondition_frequency = 1, long start_preconditioning_step = 1,
        double exponent_override = 0, int skip_preconditioning_dim_size_gt = 0, ShampooGrafting grafting = ShampooGrafting.AdaGrad,
        double grafting_epsilon = 1e-10, double grafting_beta2 = 0.999)
        => new(parameters, DefaultOptions(lr, beta1, beta2, epsilon, momentum, nesterov, weight_decay, use_decoupled_weight_decay,
            max_preconditioner_dim, precondition_frequency, start_preconditioning_step, exponent_override,
            skip_preconditioning_dim_size_gt, grafting, grafting_epsilon, grafting_beta2));

    /// <summary>The same preset over parameter groups: unset group options take these arguments.</summary>
    public static ShampooOptimizer Create(IEnumerable<MomentParamGroup<ShampooOptions>> parameters, double lr = 1e-2, double beta1 = 0,
        double beta2 = 1, double epsilon = 1e-12, double momentum = 0, bool nesterov = false, double weight_decay = 0,
        bool use_decoupled_weight_decay = true, int max_preconditioner_dim = 1024, int precondition_frequency = 1,
        long start_preconditioning_step = 1, double exponent_override = 0, int skip_preconditioning_dim_size_gt = 0,
        ShampooGrafting grafting = ShampooGrafting.AdaGrad, double grafting_epsilon = 1e-10, double grafting_beta2 = 0.999)
        => new(parameters, DefaultOptions(lr, beta1, beta2, epsilon, momentum, nesterov, weight_decay, use_decoupled_weight_decay,
            max_preconditioner_dim, precondition_frequency, start_preconditioning_step, exponent_override,
            skip_preconditioning_dim_size_gt, grafting, grafting_epsilon, grafting_beta2));
}
