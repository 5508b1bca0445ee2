namespace AdaGraft.Optimizers;

/// <summary>
/// LAMB (You et al., 2019, "Large Batch Optimization for Deep Learning: Training BERT in 76 minutes") as a TorchSharp optimizer; see <see cref="LambRule"/> for the update. Build it with <c>Create</c>.
/// Usable standalone and inside closed-form grafting.
/// </summary>
public sealed class LambOptimizer : MomentRuleOptimizer<LambOptions, LambState, LambRule>
{
    /// <inheritdoc cref="MomentRuleOptimizer{TOptions, TState, TRule}(IEnumerable{Parameter}, TOptions)" />
    public LambOptimizer(IEnumerable<Parameter> parameters, LambOptions options) : base(parameters, options) { }

    /// <inheritdoc cref="MomentRuleOptimizer{TOptions, TState, TRule}(IEnumerable{MomentParamGroup{TOptions}}, TOptions)" />
    public LambOptimizer(IEnumerable<MomentParamGroup<LambOptions>> groups, LambOptions defaults) : base(groups, defaults) { }

    /// <summary>Options with every hyperparameter set.</summary>
    public static LambOptions DefaultOptions(double lr = 1e-3, double beta1 = 0.9, double beta2 = 0.999, double eps = 1e-6, double weight_decay = 0.01, bool bias_correction = true) => new() {
        LearningRate = lr,
        Beta1 = beta1,
        Beta2 = beta2,
        Epsilon = eps,
        WeightDecay = weight_decay,
        BiasCorrection = bias_correction,
    };

    /// <summary>
    /// LAMB with PyTorch-style arguments; defaults as in the paper's BERT experiments (λ = 0.01) and the common
    /// implementations (ε = 1e-6, bias correction on).
    /// </summary>
    public static LambOptimizer Create(IEnumerable<Parameter> parameters, double lr = 1e-3, double beta1 = 0.9, double beta2 = 0.999, double eps = 1e-6, double weight_decay = 0.01, bool bias_correction = true)
        => new(parameters, DefaultOptions(lr, beta1, beta2, eps, weight_decay, bias_correction));

    /// <summary>The same preset over parameter groups: unset group options take these arguments.</summary>
    public static LambOptimizer Create(IEnumerable<MomentParamGroup<LambOptions>> parameters, double lr = 1e-3, double beta1 = 0.9, double beta2 = 0.999, double eps = 1e-6, double weight_decay = 0.01, bool bias_correction = true)
        => new(parameters, DefaultOptions(lr, beta1, beta2, eps, weight_decay, bias_correction));
}
