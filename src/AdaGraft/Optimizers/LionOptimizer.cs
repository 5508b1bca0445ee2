namespace AdaGraft.Optimizers;

/// <summary>
/// Lion (Chen et al., 2023, "Symbolic Discovery of Optimization Algorithms") as a TorchSharp optimizer; see <see cref="LionRule"/> for the update. Build it with <c>Create</c>.
/// Usable standalone and inside closed-form grafting.
/// </summary>
public sealed class LionOptimizer : MomentRuleOptimizer<LionOptions, LionState, LionRule>
{
    /// <inheritdoc cref="MomentRuleOptimizer{TOptions, TState, TRule}(IEnumerable{Parameter}, TOptions)" />
    public LionOptimizer(IEnumerable<Parameter> parameters, LionOptions options) : base(parameters, options) { }

    /// <inheritdoc cref="MomentRuleOptimizer{TOptions, TState, TRule}(IEnumerable{MomentParamGroup{TOptions}}, TOptions)" />
    public LionOptimizer(IEnumerable<MomentParamGroup<LionOptions>> groups, LionOptions defaults) : base(groups, defaults) { }

    /// <summary>Options with every hyperparameter set.</summary>
    public static LionOptions DefaultOptions(double lr = 1e-4, double beta1 = 0.9, double beta2 = 0.99, double weight_decay = 0) => new() {
        LearningRate = lr,
        Beta1 = beta1,
        Beta2 = beta2,
        WeightDecay = weight_decay,
    };

    /// <summary>
    /// Lion with PyTorch-style arguments and the paper's defaults (β1 = 0.9, β2 = 0.99). Lion's steps have unit
    /// size per coordinate: use a learning rate 3–10× smaller than AdamW's and a weight decay 3–10× larger.
    /// </summary>
    public static LionOptimizer Create(IEnumerable<Parameter> parameters, double lr = 1e-4, double beta1 = 0.9, double beta2 = 0.99, double weight_decay = 0)
        => new(parameters, DefaultOptions(lr, beta1, beta2, weight_decay));

    /// <summary>The same preset over parameter groups: unset group options take these arguments.</summary>
    public static LionOptimizer Create(IEnumerable<MomentParamGroup<LionOptions>> parameters, double lr = 1e-4, double beta1 = 0.9, double beta2 = 0.99, double weight_decay = 0)
        => new(parameters, DefaultOptions(lr, beta1, beta2, weight_decay));
}
