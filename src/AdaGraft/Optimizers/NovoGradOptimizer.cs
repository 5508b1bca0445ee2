namespace AdaGraft.Optimizers;

/// <summary>
/// NovoGrad (Ginsburg et al., 2019, "Stochastic Gradient Methods with Layer-wise Adaptive Moments for Training of Deep Networks") as a TorchSharp optimizer; see <see cref="NovoGradRule"/> for the update. Build it with <c>Create</c>.
/// Usable standalone and inside closed-form grafting.
/// </summary>
public sealed class NovoGradOptimizer : MomentRuleOptimizer<NovoGradOptions, NovoGradState, NovoGradRule>
{
    /// <inheritdoc cref="MomentRuleOptimizer{TOptions, TState, TRule}(IEnumerable{Parameter}, TOptions)" />
    public NovoGradOptimizer(IEnumerable<Parameter> parameters, NovoGradOptions options) : base(parameters, options) { }

    /// <inheritdoc cref="MomentRuleOptimizer{TOptions, TState, TRule}(IEnumerable{MomentParamGroup{TOptions}}, TOptions)" />
    public NovoGradOptimizer(IEnumerable<MomentParamGroup<NovoGradOptions>> groups, NovoGradOptions defaults) : base(groups, defaults) { }

    /// <summary>Options with every hyperparameter set.</summary>
    public static NovoGradOptions DefaultOptions(double lr = 1e-3, double beta1 = 0.95, double beta2 = 0.98, double eps = 1e-8, double weight_decay = 0) => new() {
        LearningRate = lr,
        Beta1 = beta1,
        Beta2 = beta2,
        Epsilon = eps,
        WeightDecay = weight_decay,
    };

    /// <summary>
    /// NovoGrad with PyTorch-style arguments and the paper's defaults (β1 = 0.95, β2 = 0.98).
    /// </summary>
    public static NovoGradOptimizer Create(IEnumerable<Parameter> parameters, double lr = 1e-3, double beta1 = 0.95, double beta2 = 0.98, double eps = 1e-8, double weight_decay = 0)
        => new(parameters, DefaultOptions(lr, beta1, beta2, eps, weight_decay));

    /// <summary>The same preset over parameter groups: unset group options take these arguments.</summary>
    public static NovoGradOptimizer Create(IEnumerable<MomentParamGroup<NovoGradOptions>> parameters, double lr = 1e-3, double beta1 = 0.95, double beta2 = 0.98, double eps = 1e-8, double weight_decay = 0)
        => new(parameters, DefaultOptions(lr, beta1, beta2, eps, weight_decay));
}
