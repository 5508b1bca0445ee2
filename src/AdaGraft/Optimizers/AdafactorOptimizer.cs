namespace AdaGraft.Optimizers;

/// <summary>
/// Adafactor (Shazeer and Stern, 2018, "Adafactor: Adaptive Learning Rates with Sublinear Memory Cost") as a TorchSharp optimizer; see <see cref="AdafactorRule"/> for the update. Build it with <c>Create</c>.
/// Usable standalone and inside closed-form grafting.
/// </summary>
public sealed class AdafactorOptimizer : MomentRuleOptimizer<AdafactorOptions, AdafactorState, AdafactorRule>
{
    /// <inheritdoc cref="MomentRuleOptimizer{TOptions, TState, TRule}(IEnumerable{Parameter}, TOptions)" />
    public AdafactorOptimizer(IEnumerable<Parameter> parameters, AdafactorOptions options) : base(parameters, options) { }

    /// <inheritdoc cref="MomentRuleOptimizer{TOptions, TState, TRule}(IEnumerable{MomentParamGroup{TOptions}}, TOptions)" />
    public AdafactorOptimizer(IEnumerable<MomentParamGroup<AdafactorOptions>> groups, AdafactorOptions defaults) : base(groups, defaults) { }

    /// <summary>Options with every hyperparameter set.</summary>
    public static AdafactorOptions DefaultOptions(double lr, double beta1 = 0, double decay_rate = 0.8, double? beta2 = null, double eps1 = 1e-30, double eps2 = 1e-3, double clip_threshold = 1.0, bool relative_step = false) => new() {
        LearningRate = lr,
        Beta1 = beta1,
        DecayRate = decay_rate,
        Beta2 = beta2 ?? 0.999,
        FixedBeta2 = beta2 is not null,
        Epsilon1 = eps1,
        Epsilon2 = eps2,
        ClipThreshold = clip_threshold,
        RelativeStep = relative_step,
    };

    /// <summary>
    /// Adafactor with PyTorch-style arguments: an explicit learning rate (no relative step unless
    /// <c>relative_step</c>), no momentum unless <c>beta1</c> &gt; 0, the decay schedule 1 − t^(−decay_rate) unless a
    /// fixed <c>beta2</c> is given (then bias-corrected), ε1 = 1e-30, ε2 = 1e-3 and update clipping d = 1.
    /// </summary>
    public static AdafactorOptimizer Create(IEnumerable<Parameter> parameters, double lr, double beta1 = 0, double decay_rate = 0.8, double? beta2 = null, double eps1 = 1e-30, double eps2 = 1e-3, double clip_threshold = 1.0, bool relative_step = false)
        => new(parameters, DefaultOptions(lr, beta1, decay_rate, beta2, eps1, eps2, clip_threshold, relative_step));

    /// <summary>The same preset over parameter groups: unset group options take these arguments.</summary>
    public static AdafactorOptimizer Create(IEnumerable<MomentParamGroup<AdafactorOptions>> parameters, double lr, double beta1 = 0, double decay_rate = 0.8, double? beta2 = null, double eps1 = 1e-30, double eps2 = 1e-3, double clip_threshold = 1.0, bool relative_step = false)
        => new(parameters, DefaultOptions(lr, beta1, decay_rate, beta2, eps1, eps2, clip_threshold, relative_step));
}
