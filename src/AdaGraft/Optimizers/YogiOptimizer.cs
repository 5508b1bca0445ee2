namespace AdaGraft.Optimizers;

/// <summary>
/// Yogi (Zaheer et al., 2018, "Adaptive Methods for Nonconvex Optimization") as a TorchSharp optimizer; see
/// <see cref="YogiRule"/> for the update. Build it with <c>Create</c>. Usable inside closed-form grafting.
/// </summary>
public sealed class YogiOptimizer : MomentRuleOptimizer<YogiOptions, YogiState, YogiRule>
{
    /// <inheritdoc cref="MomentRuleOptimizer{TOptions, TState, TRule}(IEnumerable{Parameter}, TOptions)" />
    public YogiOptimizer(IEnumerable<Parameter> parameters, YogiOptions options) : base(parameters, options) { }

    /// <inheritdoc cref="MomentRuleOptimizer{TOptions, TState, TRule}(IEnumerable{MomentParamGroup{TOptions}}, TOptions)" />
    public YogiOptimizer(IEnumerable<MomentParamGroup<YogiOptions>> groups, YogiOptions defaults) : base(groups, defaults) { }

    /// <summary>Options with every hyperparameter set (defaults of the reference implementations).</summary>
    public static YogiOptions DefaultOptions(double lr = 1e-2, double beta1 = 0.9, double beta2 = 0.999, double eps = 1e-3, double initial_accumulator_value = 1e-6) => new() {
        LearningRate = lr,
        Beta1 = beta1,
        Beta2 = beta2,
        Epsilon = eps,
        InitialAccumulator = initial_accumulator_value,
    };

    /// <summary>
    /// Yogi with PyTorch-style arguments. Defaults follow the paper's recommendation (η = 1e-2, ε = 1e-3) and the
    /// reference implementations' v0 = 1e-6; pass <c>initial_accumulator_value: 0</c> for Algorithm 2's v0 = 0.
    /// </summary>
    public static YogiOptimizer Create(IEnumerable<Parameter> parameters, double lr = 1e-2, double beta1 = 0.9, double beta2 = 0.999, double eps = 1e-3, double initial_accumulator_value = 1e-6)
        => new(parameters, DefaultOptions(lr, beta1, beta2, eps, initial_accumulator_value));

    /// <summary>The same preset over parameter groups: unset group options take these arguments.</summary>
    public static YogiOptimizer Create(IEnumerable<MomentParamGroup<YogiOptions>> parameters, double lr = 1e-2, double beta1 = 0.9, double beta2 = 0.999, double eps = 1e-3, double initial_accumulator_value = 1e-6)
        => new(parameters, DefaultOptions(lr, beta1, beta2, eps, initial_accumulator_value));
}
