using static TorchSharp.torch.optim;

namespace AdaGraft.Optimizers;

/// <summary>
/// LARS (You, Gitman and Ginsburg, 2017, "Large Batch Training of Convolutional Networks") as a TorchSharp optimizer; see <see cref="LarsRule"/> for the update. Build it with <c>Create</c>.
/// Usable standalone and inside closed-form grafting.
/// </summary>
public sealed class LarsOptimizer : RuleOptimizer<LarsOptions, LarsState, LarsRule>, IMomentum
{
    /// <summary>A parameter group with its own options; unset options inherit the optimizer's.</summary>
    public sealed class ParamGroup : ParamGroup<LarsOptions>, IMomentum
    {
        /// <summary>An empty group (set <c>Parameters</c>).</summary>
        public ParamGroup() { }

        /// <summary>A group over <paramref name="parameters"/> with <paramref name="options"/> (null: all inherited).</summary>
        public ParamGroup(IEnumerable<Parameter> parameters, LarsOptions? options = null)
            : base(parameters, options ?? new LarsOptions()) { }

        /// <summary>Momentum μ of this group.</summary>
        public double Momentum { get => Options.Momentum!.Value; set => Options.Momentum = value; }
    }

    /// <summary>Creates the optimizer over <paramref name="parameters"/> with <paramref name="options"/> (every option must be set).</summary>
    public LarsOptimizer(IEnumerable<Parameter> parameters, LarsOptions options)
        : this(new[] { new ParamGroup(Checked(parameters)) }, options) { }

    /// <summary>Creates the optimizer over parameter groups; unset group options come from <paramref name="defaults"/>.</summary>
    public LarsOptimizer(IEnumerable<ParamGroup> groups, LarsOptions defaults)
        : base(groups, defaults) { }

    private static IEnumerable<Parameter> Checked(IEnumerable<Parameter> parameters)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        return parameters;
    }

    /// <summary>Default momentum μ.</summary>
    public double Momentum { get => Defaults.Momentum!.Value; set => Defaults.Momentum = value; }

    /// <summary>Options with every hyperparameter set.</summary>
    public static LarsOptions DefaultOptions(double lr, double momentum = 0.9, double weight_decay = 0, double trust_coefficient = 0.001) => new() {
        LearningRate = lr,
        Momentum = momentum,
        WeightDecay = weight_decay,
        TrustCoefficient = trust_coefficient,
    };

    /// <summary>
    /// LARS with PyTorch-style arguments: a global learning rate (no default, as for SGD), heavy-ball momentum and
    /// the paper's trust coefficient η = 0.001.
    /// </summary>
    public static LarsOptimizer Create(IEnumerable<Parameter> parameters, double lr, double momentum = 0.9, double weight_decay = 0, double trust_coefficient = 0.001)
        => new(parameters, DefaultOptions(lr, momentum, weight_decay, trust_coefficient));

    /// <summary>The same preset over parameter groups: unset group options take these arguments.</summary>
    public static LarsOptimizer Create(IEnumerable<ParamGroup> parameters, double lr, double momentum = 0.9, double weight_decay = 0, double trust_coefficient = 0.001)
        => new(parameters, DefaultOptions(lr, momentum, weight_decay, trust_coefficient));

    /// <summary>Adds a group; accepts <see cref="ParamGroup"/> or any group with <see cref="LarsOptions"/>.</summary>
    public override void add_param_group(TorchSharp.Modules.ParamGroup param_group)
    {
        if (param_group is not null && param_group is not ParamGroup && param_group.Options is null or LarsOptions) {
            param_group = new ParamGroup(param_group.Parameters, (LarsOptions?)param_group.Options);
        }
        base.add_param_group(param_group!);
    }
}
