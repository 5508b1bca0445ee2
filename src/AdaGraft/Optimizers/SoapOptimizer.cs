namespace AdaGraft.Optimizers;

/// <summary>
/// SOAP (Vyas et al., 2024, "SOAP: Improving and Stabilizing Shampoo using Adam") as a TorchSharp optimizer: Adam in
/// the eigenbasis of Shampoo's factors; see <see cref="SoapRule"/> for the update and where it differs from the
/// reference implementation. Build it with <c>Create</c>. Usable standalone and as M or D of a closed-form graft.
/// </summary>
public sealed class SoapOptimizer : MomentRuleOptimizer<SoapOptions, SoapState, SoapRule>
{
    /// <inheritdoc cref="MomentRuleOptimizer{TOptions, TState, TRule}(IEnumerable{Parameter}, TOptions)" />
    public SoapOptimizer(IEnumerable<Parameter> parameters, SoapOptions options) : base(parameters, options) { }

    /// <inheritdoc cref="MomentRuleOptimizer{TOptions, TState, TRule}(IEnumerable{MomentParamGroup{TOptions}}, TOptions)" />
    public SoapOptimizer(IEnumerable<MomentParamGroup<SoapOptions>> groups, SoapOptions defaults) : base(groups, defaults) { }

    /// <summary>Options with every hyperparameter set (<paramref name="shampoo_beta"/> null: <paramref name="beta2"/>).</summary>
    public static SoapOptions DefaultOptions(double lr = 3e-3, double beta1 = 0.95, double beta2 = 0.95, double? shampoo_beta = null,
        double eps = 1e-8, double weight_decay = 0.01, int precondition_frequency = 10, int max_precond_dim = 10000,
        bool merge_dims = false, bool precondition_1d = false, bool normalize_grads = false, bool correct_bias = true,
        bool identity_basis = false) => new() {
            LearningRate = lr,
            Beta1 = beta1,
            Beta2 = beta2,
            ShampooBeta = shampoo_beta ?? beta2,
            Epsilon = eps,
            WeightDecay = weight_decay,
            PreconditionFrequency = precondition_frequency,
            MaxPreconditionerDim = max_precond_dim,
            MergeDims = merge_dims,
            Precondition1D = precondition_1d,
            NormalizeGrads = normalize_grads,
            CorrectBias = correct_bias,
            IdentityBasis = identity_basis,
        };

    /// <summary>
    /// SOAP with the reference implementation's arguments and defaults (lr 3e-3, betas 0.95 and 0.95, the factors'
    /// decay <paramref name="shampoo_beta"/> = β2 unless given, ε 1e-8, weight decay 0.01, a basis refresh every 10
    /// steps, no basis for dimensions above 10000, vectors by plain Adam). <paramref name="identity_basis"/> holds
    /// every basis at the identity (Adam; for checks).
    /// </summary>
    public static SoapOptimizer Create(IEnumerable<Parameter> parameters, double lr = 3e-3, double beta1 = 0.95, double beta2 = 0.95,
        double? shampoo_beta = null, double eps = 1e-8, double weight_decay = 0.01, int precondition_frequency = 10,
        int max_precond_dim = 10000, bool merge_dims = false, bool precondition_1d = false, bool normalize_grads = false,
        bool correct_bias = true, bool identity_basis = false)
        => new(parameters, DefaultOptions(lr, beta1, beta2, shampoo_beta, eps, weight_decay, precondition_frequency, max_precond_dim,
            merge_dims, precondition_1d, normalize_grads, correct_bias, identity_basis));

    /// <summary>The same preset over parameter groups: unset group options take these arguments.</summary>
    public static SoapOptimizer Create(IEnumerable<MomentParamGroup<SoapOptions>> parameters, double lr = 3e-3, double beta1 = 0.95,
        double beta2 = 0.95, double? shampoo_beta = null, double eps = 1e-8, double weight_decay = 0.01, int precondition_frequency = 10,
        int max_precond_dim = 10000, bool merge_dims = false, bool precondition_1d = false, bool normalize_grads = false,
        bool correct_bias = true, bool identity_basis = false)
        => new(parameters, DefaultOptions(lr, beta1, beta2, shampoo_beta, eps, weight_decay, precondition_frequency, max_precond_dim,
            merge_dims, precondition_1d, normalize_grads, correct_bias, identity_basis));
}
