using static TorchSharp.torch.optim;

namespace AdaGraft.Optimizers;

/// <summary>
/// Algorithm 1 of Agarwal, Anil, Hazan, Koren and Zhang (2020), "Disentangling Adaptive Gradient Methods from
/// Learning Rates", as a TorchSharp optimizer: one generic second-moment rule that is SGD, heavy ball, AdaGrad,
/// RMSprop or Adam depending on its options (see <see cref="SecondMomentRule"/> for the update in pseudo-code).
/// </summary>
/// <remarks>
/// <para>Use a preset: the paper's forms (<c>Sgd</c>, <c>HeavyBall</c>, <c>AdaGrad</c>, <c>RmsProp</c>, <c>Adam</c>:
/// momentum 0.9 and ε = 0 unless given), or the forms that reproduce TorchSharp's built-ins (<c>TorchSgd</c>,
/// <c>TorchAdam</c>, <c>TorchAdamW</c>, <c>TorchAdagrad</c>, <c>TorchRmsProp</c>): the same argument names, order and
/// defaults as <c>torch.optim.SGD/Adam/AdamW/Adagrad/RMSProp</c>, the same first-argument forms (parameters,
/// <c>named_parameters()</c>, TorchSharp's parameter groups, or this class's <see cref="ParamGroup"/>s), and every
/// finite value the built-in accepts (SGD's momentum 1 included). Every preset also takes parameter groups; errors name
/// the argument as the preset calls it (<c>momentum</c>, <c>alpha</c>), at construction and at a step.</para>
/// <para>LR schedulers change <c>ParamGroup.LearningRate</c>; schedulers that cycle momentum or betas use
/// <see cref="IMomentum"/> (β1) and <see cref="IBetas"/> (β1, β2).</para>
/// </remarks>
public sealed partial class GenericSecondMomentOptimizer : MomentRuleOptimizer<SecondMomentOptions, SecondMomentState, SecondMomentRule, GenericSecondMomentOptimizer.ParamGroup>, IFusedPlanSource
{
    /// <summary>A parameter group with its own options; unset options inherit the optimizer's.</summary>
    public sealed class ParamGroup : MomentParamGroup<SecondMomentOptions>
    {
        /// <summary>An empty group (set <c>Parameters</c>).</summary>
        public ParamGroup() { }

        /// <summary>A group over <paramref name="parameters"/> with <paramref name="options"/> (null: all inherited).</summary>
        public ParamGroup(IEnumerable<Parameter> parameters, SecondMomentOptions? options = null) : base(parameters, options) { }
    }

    /// <summary>Creates the optimizer over <paramref name="parameters"/> with <paramref name="options"/> (every option must be set).</summary>
    public GenericSecondMomentOptimizer(IEnumerable<Parameter> parameters, SecondMomentOptions options)
        : base(parameters, options) { }

    /// <summary>Creates the optimizer over parameter groups; unset group options come from <paramref name="defaults"/>.</summary>
    public GenericSecondMomentOptimizer(IEnumerable<ParamGroup> groups, SecondMomentOptions defaults)
        : base(groups, defaults) { }

    /// <summary>
    /// On (default): contiguous float32/float64 CPU tensors take each step in one fused pass over memory (SIMD, chunks
    /// in parallel) instead of one pass per tensor operation; the numbers agree with the eager path to round-off.
    /// Off: always the eager TorchSharp operations (what CUDA, half-precision and strided tensors use anyway).
    /// The process-wide switch <see cref="CpuSwitches.FusedKernels"/> (<c>ADAGRAFT_FUSED_CPU=0</c>) turns the kernel
    /// off for every instance, whatever this says.
    /// The kernel writes through the tensors' data pointers and then advances the autograd version counter of every
    /// tensor it wrote, so a backward pass through a graph that saw the old values raises, as on the eager path.
    /// </summary>
    public bool FusedCpuKernel { get; set; } = true;

    /// <inheritdoc />
    private protected override bool PacksSlots => true;

    /// <summary>The one place this optimizer decides: its own option and the process-wide switch.</summary>
    private bool Fused => CpuSwitches.Fused(FusedCpuKernel);

    /// <inheritdoc />
    protected override bool[]? TryFusedSteps(IReadOnlyList<TensorStep> tensors) =>
        FusedSteps(FusedCpuKernel, tensors, (o, state) => (SecondMomentRule.Plan(o, state), default(FusedPointers)), StepChunk);

    /// <summary>The Algorithm 1 kernel over elements [start, end) of one tensor.</summary>
    private static void StepChunk(in FusedPlan plan, in FusedPointers at, long start, long end)
    {
        if (at.Single) FusedCpu.Step<float>(plan, at.W, at.G, start, end);
        else FusedCpu.Step<double>(plan, at.W, at.G, start, end);
    }

    /// <inheritdoc />
    bool IFusedPlanSource.CanFuseState(Parameter parameter, ScalarType dtype)
    {
        var (_, state) = EntryOf(parameter);
        return Fused && FusedRules.StateCanFuse(state, dtype);
    }

    /// <inheritdoc />
    FusedPlan IFusedPlanSource.Plan(Parameter parameter)
    {
        var (options, state) = EntryOf(parameter);
        return SecondMomentRule.Plan(options, state);
    }

    /// <inheritdoc />
    RuleState IFusedPlanSource.StateOf(Parameter parameter) => EntryOf(parameter).state;

    /// <summary>Checks a preset argument under the name the caller typed (e.g. alpha, momentum).</summary>
    private static void RequireUnit(double value, string name, bool hiOpen)
    {
        if (double.IsNaN(value) || value < 0 || value > 1 || (hiOpen && value == 1))
            throw new System.ArgumentOutOfRangeException(name, value, $"{name} must lie in [0, 1{(hiOpen ? ")" : "]")}; e.g. 0.9.");
    }

    // The names each preset gives the options it sets, so that errors (at construction, at a step, on load) name the
    // argument the user typed: TorchSgd's "momentum" is Algorithm 1's β1, TorchRmsProp's "alpha" its β2.
    private static readonly IReadOnlyDictionary<string, string> MomentumNames = new Dictionary<string, string> { ["beta1"] = "momentum" };
    private static readonly IReadOnlyDictionary<string, string> TorchSgdNames = new Dictionary<string, string> { ["beta1"] = "momentum", ["lr"] = "learningRate" };
    private static readonly IReadOnlyDictionary<string, string> TorchRmsPropNames = new Dictionary<string, string> { ["beta1"] = "momentum", ["beta2"] = "alpha" };

    /// <summary>Options with every convention off; the base of every preset.</summary>
    public static SecondMomentOptions BaseOptions(double lr) => new() {
        LearningRate = lr,
        Beta1 = 0,
        Beta2 = 1,
        Preconditioned = false,
        Epsilon = 0,
        EpsilonPlacement = Rules.EpsilonPlacement.OutsideRoot,
        ScaleFirstMoment = false,
        ScaleSecondMoment = false,
        BiasCorrection = false,
        WeightDecay = 0,
        DecoupledWeightDecay = false,
        Maximize = false,
        Nesterov = false,
        Dampening = 0,
        InitialAccumulator = 0,
        AmsGrad = false,
        MomentumPlacement = Rules.MomentumPlacement.BeforePreconditioner,
        LearningRateDecay = 0,
    };

    /// <summary><see cref="BaseOptions"/> with momentum β1 and the weight decay set (the common part of every preset).</summary>
    private static SecondMomentOptions MomentumOptions(double lr, double beta1, double weight_decay)
    {
        var o = BaseOptions(lr);
        o.Beta1 = beta1;
        o.WeightDecay = weight_decay;
        return o;
    }

    /// <summary>
    /// <see cref="MomentumOptions"/> with a second moment: β2 and ε at <paramref name="placement"/> (the common part of
    /// every preconditioned preset).
    /// </summary>
    private static SecondMomentOptions PreconditionedOptions(double lr, double beta1, double beta2, double eps, Rules.EpsilonPlacement placement, double weight_decay)
    {
        var o = MomentumOptions(lr, beta1, weight_decay);
        o.Beta2 = beta2;
        o.Preconditioned = true;
        o.Epsilon = eps;
        o.EpsilonPlacement = placement;
        return o;
    }

    private static SecondMomentOptions Named(SecondMomentOptions o, IReadOnlyDictionary<string, string> names)
    {
        o.ArgumentNames = names;
        return o;
    }

    /// <summary>The parameters of TorchSharp's named-parameter form (<c>model.named_parameters()</c>).</summary>
    private static List<Parameter> Unnamed(IEnumerable<(string name, Parameter parameter)> parameters)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        return parameters.Select(np => np.parameter).ToList();
    }

    /// <summary>
    /// TorchSharp's parameter groups as this optimizer's: the same parameters, each option the group sets (null ones
    /// inherit the preset's arguments, as in TorchSharp). The groups are copied: use the optimizer's <c>ParamGroups</c>
    /// to change a group later.
    /// </summary>
    private static List<ParamGroup> FromTorch<TOptions>(IEnumerable<TorchSharp.Modules.ParamGroup<TOptions>> parameters, Action<TOptions, SecondMomentOptions> copy)
        where TOptions : OptimizerOptions
    {
        ArgumentNullException.ThrowIfNull(parameters);
        var groups = new List<ParamGroup>();
        foreach (var g in parameters) {
            if (g is null) throw new ArgumentException($"Parameter group {groups.Count} is null.", nameof(parameters));
            var o = new SecondMomentOptions();
            if (g.Options is TOptions source) {
                o.LearningRate = source.LearningRate;
                copy(source, o);
            }
            groups.Add(new ParamGroup(g.Parameters, o));
        }
        return groups;
    }

    // ---------------- Paper forms (Algorithm 1 as written: no (1−β) scaling, ε = 0 pseudoinverse) ----------------
    // These check momentum ∈ [0, 1) (and RmsProp's β2 ∈ [0, 1]) when built; the TorchSharp-compatible forms accept what
    // TorchSharp's built-ins accept.

    private static SecondMomentOptions SgdOptions(double lr, double momentum, double weight_decay)
    {
        RequireUnit(momentum, nameof(momentum), hiOpen: true);
        return Named(MomentumOptions(lr, momentum, weight_decay), MomentumNames);
    }

    /// <summary>Plain SGD: <c>w ← w − η·g</c> (give <paramref name="momentum"/> for heavy ball).</summary>
    public static GenericSecondMomentOptimizer Sgd(IEnumerable<Parameter> parameters, double lr, double momentum = 0, double weight_decay = 0)
        => new(parameters, SgdOptions(lr, momentum, weight_decay));

    /// <summary><see cref="Sgd(IEnumerable{Parameter}, double, double, double)"/> over parameter groups (unset group options take these arguments).</summary>
    public static GenericSecondMomentOptimizer Sgd(IEnumerable<ParamGroup> parameters, double lr, double momentum = 0, double weight_decay = 0)
        => new(parameters, SgdOptions(lr, momentum, weight_decay));

    /// <summary>Heavy-ball SGD (the paper's "SGD"): <c>m1 ← β1·m1 + g; w ← w − η·m1</c>.</summary>
    public static GenericSecondMomentOptimizer HeavyBall(IEnumerable<Parameter> parameters, double lr, double momentum = 0.9, double weight_decay = 0)
        => new(parameters, SgdOptions(lr, momentum, weight_decay));

    /// <summary><see cref="HeavyBall(IEnumerable{Parameter}, double, double, double)"/> over parameter groups (unset group options take these arguments).</summary>
    public static GenericSecondMomentOptimizer HeavyBall(IEnumerable<ParamGroup> parameters, double lr, double momentum = 0.9, double weight_decay = 0)
        => new(parameters, SgdOptions(lr, momentum, weight_decay));

    private static SecondMomentOptions AdaGradOptions(double lr, double momentum, double eps, double weight_decay)
    {
        RequireUnit(momentum, nameof(momentum), hiOpen: true);
        return Named(PreconditionedOptions(lr, momentum, 1, eps, Rules.EpsilonPlacement.InsideRoot, weight_decay), MomentumNames);
    }

    /// <summary>AdaGrad with momentum (paper form): <c>m2 ← m2 + g²; w ← w − η·m1/√m2</c>, ε = 0 pseudoinverse.</summary>
    public static GenericSecondMomentOptimizer AdaGrad(IEnumerable<Parameter> parameters, double lr, double momentum = 0.9, double eps = 0, double weight_decay = 0)
        => new(parameters, AdaGradOptions(lr, momentum, eps, weight_decay));

    /// <summary><see cref="AdaGrad(IEnumerable{Parameter}, double, double, double, double)"/> over parameter groups (unset group options take these arguments).</summary>
    public static GenericSecondMomentOptimizer AdaGrad(IEnumerable<ParamGroup> parameters, double lr, double momentum = 0.9, double eps = 0, double weight_decay = 0)
        => new(parameters, AdaGradOptions(lr, momentum, eps, weight_decay));

    private static SecondMomentOptions RmsPropOptions(double lr, double momentum, double beta2, double eps, double weight_decay)
    {
        RequireUnit(momentum, nameof(momentum), hiOpen: true);
        RequireUnit(beta2, nameof(beta2), hiOpen: false);
        return Named(PreconditionedOptions(lr, momentum, beta2, eps, Rules.EpsilonPlacement.InsideRoot, weight_decay), MomentumNames);
    }

    /// <summary>RMSprop with momentum (paper form): <c>m2 ← β2·m2 + g²; w ← w − η·m1/√m2</c>.</summary>
    public static GenericSecondMomentOptimizer RmsProp(IEnumerable<Parameter> parameters, double lr, double momentum = 0.9, double beta2 = 0.999, double eps = 0, double weight_decay = 0)
        => new(parameters, RmsPropOptions(lr, momentum, beta2, eps, weight_decay));

    /// <summary><see cref="RmsProp(IEnumerable{Parameter}, double, double, double, double, double)"/> over parameter groups (unset group options take these arguments).</summary>
    public static GenericSecondMomentOptimizer RmsProp(IEnumerable<ParamGroup> parameters, double lr, double momentum = 0.9, double beta2 = 0.999, double eps = 0, double weight_decay = 0)
        => new(parameters, RmsPropOptions(lr, momentum, beta2, eps, weight_decay));

    private static SecondMomentOptions AdamOptions(double lr, double beta1, double beta2, double eps, double weight_decay)
    {
        var o = PreconditionedOptions(lr, beta1, beta2, eps, Rules.EpsilonPlacement.OutsideRoot, weight_decay);
        o.ScaleFirstMoment = true;
        o.ScaleSecondMoment = true;
        o.BiasCorrection = true;
        return o;
    }

    /// <summary>Adam (paper form, ε = 0): RMSprop's form with (1−β) scaling of both moments and bias correction.</summary>
    public static GenericSecondMomentOptimizer Adam(IEnumerable<Parameter> parameters, double lr, double beta1 = 0.9, double beta2 = 0.999, double eps = 0, double weight_decay = 0)
        => new(parameters, AdamOptions(lr, beta1, beta2, eps, weight_decay));

    /// <summary><see cref="Adam(IEnumerable{Parameter}, double, double, double, double, double)"/> over parameter groups (unset group options take these arguments).</summary>
    public static GenericSecondMomentOptimizer Adam(IEnumerable<ParamGroup> parameters, double lr, double beta1 = 0.9, double beta2 = 0.999, double eps = 0, double weight_decay = 0)
        => new(parameters, AdamOptions(lr, beta1, beta2, eps, weight_decay));
}
