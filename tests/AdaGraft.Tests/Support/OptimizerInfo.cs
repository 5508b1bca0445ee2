using System.Reflection;
using AdaGraft.Rules;

namespace AdaGraft.Tests.Support;

/// <summary>What an optimizer type can do, declared once per type in <see cref="OptimizerTable"/> (and checked there by reflection).</summary>
[Flags]
public enum Capability
{
    /// <summary>Nothing beyond a TorchSharp optimizer.</summary>
    None = 0,

    /// <summary>A fused CPU kernel, switched by the optimizer's <c>FusedCpuKernel</c> property.</summary>
    FusedKernel = 1 << 0,

    /// <summary>A closed-form graft child: proposes a step without applying it (<see cref="IProposingOptimizer"/>).</summary>
    ClosedFormChild = 1 << 1,

    /// <summary>Grafted only as a black box (saved, stepped, measured, restored): TorchSharp's built-ins.</summary>
    BlackBoxOnly = 1 << 2,

    /// <summary>Parameter groups with their own options, and LR schedulers over them.</summary>
    GroupsAndSchedulers = 1 << 3,

    /// <summary>Schedulers may cycle β1 (its groups implement <see cref="optim.IMomentum"/>).</summary>
    CyclesMomentum = 1 << 4,

    /// <summary>Some preset of the type takes <c>maximize</c>.</summary>
    Maximize = 1 << 5,

    /// <summary>Some preset of the type takes <c>weight_decay</c>.</summary>
    WeightDecay = 1 << 6,

    /// <summary>Some preset of the type takes <c>momentum</c> or <c>beta1</c>.</summary>
    Momentum = 1 << 7,

    /// <summary>Some configuration of the type reproduces a TorchSharp built-in (<see cref="OptimizerInfo.Reference"/>).</summary>
    TorchReference = 1 << 8,
}

/// <summary>An invalid value for one argument of a preset, with the exception it must raise naming that argument.</summary>
public sealed record ErrorInput(string Argument, double Value, Type Exception);

/// <summary>
/// One configuration of one of the library's optimizers, in the spirit of PyTorch's <c>OptimizerInfo</c>: a factory
/// over a parameter list (with a learning-rate multiplier), the type's capabilities, the TorchSharp built-in it
/// reproduces (if any) and, for the entry that stands for its preset, the preset's error inputs.
/// </summary>
/// <param name="Name">Unique name (the test cases' display names use it).</param>
/// <param name="Type">The optimizer type the factory builds.</param>
/// <param name="Factory">Builds the configuration over parameters with the learning rate multiplied by the second argument.</param>
public sealed record OptimizerInfo(string Name, Type Type, Func<IEnumerable<Parameter>, double, optim.Optimizer> Factory)
{
    /// <summary>The type's capabilities (from <see cref="OptimizerTable.CapabilitiesOf"/>).</summary>
    public Capability Capabilities => OptimizerTable.CapabilitiesOf(Type);

    /// <summary>True when the type has every capability in <paramref name="wanted"/>.</summary>
    public bool Has(Capability wanted) => (Capabilities & wanted) == wanted;

    /// <summary>The TorchSharp built-in with the same numbers (float64, 1e-10), or null.</summary>
    public Func<IList<Parameter>, optim.Optimizer>? Reference { get; init; }

    /// <summary>The configuration keeps no tensor state: a fresh optimizer takes the same steps as a restored one.</summary>
    public bool Stateless { get; init; }

    /// <summary>
    /// False where the grafting identities that hold to round-off for step rules (Graft(A, 3A) = A; closed form = black
    /// box) hold only approximately, for a stated reason: SOAP's decoupled weight decay multiplies the step by (1 − ηλ),
    /// so its step is not linear in η; and its eigenbases of rank-deficient factors (a vector's factor gains rank one per
    /// step) are not continuous in the gradients, so the black box's ΔD = w′ − w, which rounds differently from the
    /// closed form's proposal, can pick another basis inside a degenerate eigenspace. SOAP's own graft tests cover both
    /// paths where the factors are well defined.
    /// </summary>
    public bool ExactGraftIdentities { get; init; } = true;

    /// <summary>
    /// False where the factory splits the parameters into groups of its own (Muon's matrices, then AdamW's rest), so the
    /// optimizer's parameter order is not the caller's: a graft pairs its children's parameters by position and refuses
    /// such a pair with a plain-list partner (tested), and a group added later is of the factory's first kind. The
    /// tests that build such a pair or add such a group leave these entries out; Muon's own tests graft it through
    /// <c>MuonGraft.FromAdam</c>, which builds M over Muon's groups.
    /// </summary>
    public bool KeepsParameterOrder { get; init; } = true;

    /// <summary>The preset method this entry's error inputs are for (e.g. <c>TorchAdam</c>), or null.</summary>
    public string? Preset { get; init; }

    /// <summary>The <c>torch.optim</c> factory the preset replaces as a drop-in (e.g. <c>Adam</c>), or null.</summary>
    public string? DropInFor { get; init; }

    /// <summary>Invalid argument values of <see cref="Preset"/>, each with the exception it raises naming the argument.</summary>
    public IReadOnlyList<ErrorInput> Errors { get; init; } = Array.Empty<ErrorInput>();

    /// <summary>Builds the configuration; <paramref name="fused"/> sets the fused CPU kernel where the type has one.</summary>
    public optim.Optimizer Make(IEnumerable<Parameter> parameters, double lrScale = 1, bool? fused = null)
    {
        var opt = Factory(parameters, lrScale);
        if (fused is bool on) OptimizerTable.SetFused(opt, on);
        return opt;
    }

    /// <summary>
    /// The preset <see cref="Preset"/> called with <paramref name="argument"/> = <paramref name="value"/>, every other
    /// argument at its default; <c>lr</c> stands for the learning rate however the preset spells it (TorchSharp's SGD:
    /// <c>learningRate</c>).
    /// </summary>
    public object InvokePreset(IEnumerable<Parameter> parameters, string argument, double value)
    {
        var method = DropIn.Presets.All[$"{Type.Name}.{Preset}"];
        if (argument == "lr") argument = DropIn.Presets.LearningRateName(method);
        if (method.GetParameters().All(p => p.Name != argument))
            throw new ArgumentException($"{Type.Name}.{Preset} has no argument '{argument}'.", nameof(argument));
        return DropIn.Presets.Invoke(method, parameters, new Dictionary<string, object?> { [argument] = value });
    }
}

/// <summary>
/// The one optimizer table every property test reads: each configuration of every optimizer in
/// <c>src/AdaGraft/Optimizers</c> (Algorithm 1's presets, the zoo, TorchSharp's other built-ins as rules), with the
/// views the tests select by capability, and the helpers that work on any entry (fused switch, state, checkpoints).
/// </summary>
public static class OptimizerTable
{
    private static readonly Dictionary<Type, Capability> Types = new() {
        [typeof(GenericSecondMomentOptimizer)] = Capability.FusedKernel | Capability.ClosedFormChild | Capability.GroupsAndSchedulers | Capability.CyclesMomentum
            | Capability.Maximize | Capability.WeightDecay | Capability.Momentum | Capability.TorchReference,
        [typeof(YogiOptimizer)] = Capability.ClosedFormChild | Capability.GroupsAndSchedulers | Capability.CyclesMomentum | Capability.Momentum,
        [typeof(AdafactorOptimizer)] = Capability.ClosedFormChild | Capability.GroupsAndSchedulers | Capability.CyclesMomentum | Capability.Momentum,
        [typeof(LambOptimizer)] = Capability.ClosedFormChild | Capability.GroupsAndSchedulers | Capability.CyclesMomentum | Capability.WeightDecay | Capability.Momentum,
        [typeof(LarsOptimizer)] = Capability.ClosedFormChild | Capability.GroupsAndSchedulers | Capability.CyclesMomentum | Capability.WeightDecay | Capability.Momentum,
        [typeof(NovoGradOptimizer)] = Capability.ClosedFormChild | Capability.GroupsAndSchedulers | Capability.CyclesMomentum | Capability.WeightDecay | Capability.Momentum,
        [typeof(LionOptimizer)] = Capability.ClosedFormChild | Capability.GroupsAndSchedulers | Capability.CyclesMomentum | Capability.WeightDecay | Capability.Momentum,
        [typeof(NAdamOptimizer)] = Capability.FusedKernel | Capability.ClosedFormChild | Capability.GroupsAndSchedulers | Capability.CyclesMomentum
            | Capability.WeightDecay | Capability.Momentum | Capability.TorchReference,
        [typeof(RAdamOptimizer)] = Capability.FusedKernel | Capability.ClosedFormChild | Capability.GroupsAndSchedulers | Capability.CyclesMomentum
            | Capability.WeightDecay | Capability.Momentum | Capability.TorchReference,
        [typeof(AdamaxOptimizer)] = Capability.FusedKernel | Capability.ClosedFormChild | Capability.GroupsAndSchedulers | Capability.CyclesMomentum
            | Capability.WeightDecay | Capability.Momentum | Capability.TorchReference,
        [typeof(AdadeltaOptimizer)] = Capability.FusedKernel | Capability.ClosedFormChild | Capability.GroupsAndSchedulers | Capability.Maximize
            | Capability.WeightDecay | Capability.TorchReference,
        [typeof(MuonOptimizer)] = Capability.ClosedFormChild | Capability.GroupsAndSchedulers | Capability.CyclesMomentum | Capability.WeightDecay | Capability.Momentum,
        [typeof(SoapOptimizer)] = Capability.ClosedFormChild | Capability.GroupsAndSchedulers | Capability.CyclesMomentum | Capability.WeightDecay | Capability.Momentum,
        [typeof(ShampooOptimizer)] = Capability.ClosedFormChild | Capability.GroupsAndSchedulers | Capability.CyclesMomentum | Capability.WeightDecay
            | Capability.Momentum,
        [typeof(RmsPropOptimizer)] = Capability.FusedKernel | Capability.ClosedFormChild | Capability.GroupsAndSchedulers | Capability.CyclesMomentum
            | Capability.Maximize | Capability.WeightDecay | Capability.Momentum | Capability.TorchReference,
    };

    /// <summary>The declared capabilities of an optimizer type of the library.</summary>
    public static Capability CapabilitiesOf(Type type) => Types[type];

    /// <summary>Every optimizer type the table declares.</summary>
    public static IReadOnlyCollection<Type> DeclaredTypes => Types.Keys;

    private static OptimizerInfo E<T>(string name, Func<IEnumerable<Parameter>, double, T> factory) where T : optim.Optimizer =>
        new(name, typeof(T), factory);

    /// <summary>The generic presets' error inputs, by the role each keyword plays (as a user mistypes them).</summary>
    private static ErrorInput[] RoleErrors(string preset, string lr, string? beta1, string? beta2, string? eps, params string[] extra)
    {
        var errors = new List<(string, double)> { (lr, -0.01), (lr, double.NaN) };
        // TorchSharp's SGD and RMSProp accept momentum ≥ 1 (its CyclicLR reaches 1), RMSProp any alpha ≥ 0 and SGD
        // any dampening, so the drop-ins do too (issue 13): for them only values the built-ins refuse are invalid.
        bool torchMomentum = preset is "TorchSgd" or "TorchRmsProp";
        if (beta1 is not null) {
            errors.Add((beta1, -0.1));
            if (!torchMomentum) errors.Add((beta1, 1.0));
            errors.Add((beta1, double.NaN));
        }
        if (beta2 is not null) {
            if (preset != "TorchRmsProp") errors.Add((beta2, 1.5));
            errors.Add((beta2, -0.1));
        }
        if (eps is not null) errors.Add((eps, -1e-8));
        errors.Add(("weight_decay", -0.01));
        foreach (var e in extra) errors.Add((e, e == "dampening" ? double.NaN : -0.5));
        return errors.Select(e => new ErrorInput(e.Item1, e.Item2, typeof(ArgumentOutOfRangeException))).ToArray();
    }

    /// <summary>Every configuration, by unique name.</summary>
    public static readonly IReadOnlyList<OptimizerInfo> All = new[] {
        // Algorithm 1, the paper's forms (ε = 0 pseudoinverse, no (1−β) scaling except Adam).
        E("sgd", (p, s) => GenericSecondMomentOptimizer.Sgd(p, 0.05 * s)) with { Stateless = true, Preset = "Sgd", Errors = RoleErrors("Sgd", "lr", "momentum", null, null) },
        E("heavy-ball", (p, s) => GenericSecondMomentOptimizer.HeavyBall(p, 0.05 * s)) with { Preset = "HeavyBall", Errors = RoleErrors("HeavyBall", "lr", "momentum", null, null) },
        E("adagrad", (p, s) => GenericSecondMomentOptimizer.AdaGrad(p, 0.05 * s)) with { Preset = "AdaGrad", Errors = RoleErrors("AdaGrad", "lr", "momentum", null, "eps") },
        E("rmsprop", (p, s) => GenericSecondMomentOptimizer.RmsProp(p, 0.01 * s)) with { Preset = "RmsProp", Errors = RoleErrors("RmsProp", "lr", "momentum", "beta2", "eps") },
        E("adam", (p, s) => GenericSecondMomentOptimizer.Adam(p, 0.01 * s)) with { Preset = "Adam", Errors = RoleErrors("Adam", "lr", "beta1", "beta2", "eps") },
        // Algorithm 1, the TorchSharp-compatible forms.
        E("torch-sgd-nesterov", (p, s) => GenericSecondMomentOptimizer.TorchSgd(p, 0.05 * s, momentum: 0.9, nesterov: true)) with {
            Reference = p => optim.SGD(p, 0.05, momentum: 0.9, nesterov: true), Preset = "TorchSgd", DropInFor = nameof(optim.SGD),
            Errors = RoleErrors("TorchSgd", "lr", "momentum", null, null, "dampening"),
        },
        E("torch-adam", (p, s) => GenericSecondMomentOptimizer.TorchAdam(p, lr: 0.01 * s)) with {
            Reference = p => optim.Adam(p, 0.01), Preset = "TorchAdam", DropInFor = nameof(optim.Adam),
            Errors = RoleErrors("TorchAdam", "lr", "beta1", "beta2", "eps"),
        },
        E("torch-adam-amsgrad", (p, s) => GenericSecondMomentOptimizer.TorchAdam(p, lr: 0.01 * s, amsgrad: true)) with { Reference = p => optim.Adam(p, 0.01, amsgrad: true) },
        E("torch-adamw", (p, s) => GenericSecondMomentOptimizer.TorchAdamW(p, lr: 0.01 * s, weight_decay: 0.1)) with {
            Reference = p => optim.AdamW(p, 0.01, weight_decay: 0.1), Preset = "TorchAdamW", DropInFor = nameof(optim.AdamW),
            Errors = RoleErrors("TorchAdamW", "lr", "beta1", "beta2", "eps"),
        },
        E("torch-adagrad", (p, s) => GenericSecondMomentOptimizer.TorchAdagrad(p, lr: 0.1 * s)) with {
            Reference = p => optim.Adagrad(p, 0.1), Preset = "TorchAdagrad", DropInFor = nameof(optim.Adagrad),
            Errors = RoleErrors("TorchAdagrad", "lr", null, null, "eps", "lr_decay", "initial_accumulator_value"),
        },
        E("torch-rmsprop-momentum", (p, s) => GenericSecondMomentOptimizer.TorchRmsProp(p, lr: 0.01 * s, momentum: 0.9)) with {
            Reference = p => optim.RMSProp(p, 0.01, momentum: 0.9), Preset = "TorchRmsProp", DropInFor = nameof(optim.RMSProp),
            Errors = RoleErrors("TorchRmsProp", "lr", "momentum", "alpha", "eps"),
        },
        E("amsgrad", (p, s) => GenericSecondMomentOptimizer.AmsGrad(p, lr: 0.01 * s)) with { Reference = p => optim.Adam(p, 0.01, amsgrad: true) },
        // The direction zoo, each with its defaults and with the options that change its code path.
        E("yogi", (p, s) => YogiOptimizer.Create(p, lr: 0.01 * s)),
        E("yogi-eps0-v0", (p, s) => YogiOptimizer.Create(p, lr: 0.01 * s, beta2: 0.9, eps: 0, initial_accumulator_value: 0)),
        E("adafactor", (p, s) => AdafactorOptimizer.Create(p, lr: 0.01 * s)),
        E("adafactor-momentum-fixed-beta2", (p, s) => AdafactorOptimizer.Create(p, lr: 0.01 * s, beta1: 0.9, beta2: 0.99, clip_threshold: 0.5)),
        E("adafactor-relative-step", (p, s) => AdafactorOptimizer.Create(p, lr: 0.01 * s, relative_step: true)),
        E("lamb", (p, s) => LambOptimizer.Create(p, lr: 0.01 * s)),
        E("lamb-no-bias-correction", (p, s) => LambOptimizer.Create(p, lr: 0.01 * s, weight_decay: 0, bias_correction: false, eps: 0)),
        E("lars", (p, s) => LarsOptimizer.Create(p, lr: 0.5 * s, weight_decay: 0.01, trust_coefficient: 0.02)),
        E("lars-no-momentum", (p, s) => LarsOptimizer.Create(p, lr: 0.5 * s, momentum: 0, trust_coefficient: 0.02)) with { Stateless = true },
        E("novograd", (p, s) => NovoGradOptimizer.Create(p, lr: 0.01 * s, weight_decay: 0.01)),
        E("novograd-eps0", (p, s) => NovoGradOptimizer.Create(p, lr: 0.01 * s, eps: 0)),
        E("lion", (p, s) => LionOptimizer.Create(p, lr: 1e-3 * s)),
        E("lion-weight-decay", (p, s) => LionOptimizer.Create(p, lr: 1e-3 * s, weight_decay: 0.5)),
        // Shampoo: defaults (AdaGrad grafting, roots every step), blocked with momentum and Adam grafting, and never
        // preconditioned with Adam grafting (its identity with torch.optim.* is in Preconditioners/ShampooGraftIdentityTests).
        E("shampoo", (p, s) => ShampooOptimizer.Create(p, lr: 0.05 * s)),
        E("shampoo-blocked-adam-momentum", (p, s) => ShampooOptimizer.Create(p, lr: 0.01 * s, beta1: 0.9, beta2: 0.99, momentum: 0.5, weight_decay: 0.01,
            max_preconditioner_dim: 3, precondition_frequency: 2, grafting: ShampooGrafting.Adam, grafting_epsilon: 1e-8)),
        E("shampoo-never-adam", (p, s) => ShampooOptimizer.Create(p, lr: 0.01 * s, beta1: 0.9, start_preconditioning_step: long.MaxValue,
            grafting: ShampooGrafting.Adam, grafting_epsilon: 1e-8)),
        // TorchSharp's other second-moment built-ins, as rules (drop-ins with TorchSharp's numbers).
        E("nadam", (p, s) => NAdamOptimizer.Create(p, lr: 0.01 * s)) with { Reference = p => optim.NAdam(p, 0.01) },
        E("nadam-weight-decay", (p, s) => NAdamOptimizer.Create(p, lr: 0.01 * s, weight_decay: 0.05, momentum_decay: 0.01)) with {
            Reference = p => optim.NAdam(p, 0.01, weight_decay: 0.05, momentum_decay: 0.01),
        },
        E("nadam-weight-decay-only", (p, s) => NAdamOptimizer.Create(p, 0.01 * s, weight_decay: 0.05)) with { Reference = p => optim.NAdam(p, 0.01, weight_decay: 0.05) },
        E("nadam-betas-eps-momentum-decay", (p, s) => NAdamOptimizer.Create(p, 0.02 * s, 0.8, 0.99, 1e-6, 0.01, 0.01)) with { Reference = p => optim.NAdam(p, 0.02, 0.8, 0.99, 1e-6, 0.01, 0.01) },
        E("nadam-beta1-0", (p, s) => NAdamOptimizer.Create(p, 0.01 * s, beta1: 0)) with { Reference = p => optim.NAdam(p, 0.01, beta1: 0) },
        E("radam", (p, s) => RAdamOptimizer.Create(p, lr: 0.01 * s, beta2: 0.99)) with { Reference = p => optim.RAdam(p, 0.01, beta2: 0.99) },
        E("radam-defaults", (p, s) => RAdamOptimizer.Create(p, 0.01 * s)) with { Reference = p => optim.RAdam(p, 0.01) },
        E("radam-weight-decay", (p, s) => RAdamOptimizer.Create(p, 0.05 * s, beta2: 0.99, weight_decay: 0.05)) with { Reference = p => optim.RAdam(p, 0.05, beta2: 0.99, weight_decay: 0.05) },
        E("radam-betas-eps", (p, s) => RAdamOptimizer.Create(p, 0.3 * s, 0.5, 0.9, 1e-6)) with { Reference = p => optim.RAdam(p, 0.3, 0.5, 0.9, 1e-6) },
        E("radam-paper-weight-decay", (p, s) => RAdamOptimizer.CreatePaper(p, lr: 0.01 * s, beta2: 0.99, weight_decay: 0.05)),
        // With η = 1, η² = η: the paper's (PyTorch's) form equals TorchSharp's built-in.
        E("radam-paper-lr-1", (p, s) => RAdamOptimizer.CreatePaper(p, 1 * s, beta2: 0.9)) with { Reference = p => optim.RAdam(p, 1, beta2: 0.9) },
        E("adamax", (p, s) => AdamaxOptimizer.Create(p, lr: 0.01 * s)) with { Reference = p => optim.Adamax(p, 0.01) },
        E("adamax-eps0", (p, s) => AdamaxOptimizer.Create(p, lr: 0.01 * s, eps: 0, weight_decay: 0.05)),
        E("adamax-weight-decay", (p, s) => AdamaxOptimizer.Create(p, 0.01 * s, weight_decay: 0.05)) with { Reference = p => optim.Adamax(p, 0.01, weight_decay: 0.05) },
        E("adamax-betas-eps", (p, s) => AdamaxOptimizer.Create(p, 0.02 * s, 0.5, 0.9, 1e-3)) with { Reference = p => optim.Adamax(p, 0.02, 0.5, 0.9, 1e-3) },
        E("adadelta", (p, s) => AdadeltaOptimizer.Create(p, lr: 1.0 * s)) with { Reference = p => optim.Adadelta(p) },
        E("adadelta-weight-decay", (p, s) => AdadeltaOptimizer.Create(p, lr: 1.0 * s, rho: 0.95, weight_decay: 0.05)) with { Reference = p => optim.Adadelta(p, 1.0, 0.95, weight_decay: 0.05) },
        E("adadelta-rho-weight-decay", (p, s) => AdadeltaOptimizer.Create(p, 0.5 * s, 0.95, weight_decay: 0.05)) with { Reference = p => optim.Adadelta(p, 0.5, 0.95, weight_decay: 0.05) },
        E("adadelta-eps-maximize", (p, s) => AdadeltaOptimizer.Create(p, 1 * s, eps: 1e-4, maximize: true)) with { Reference = p => optim.Adadelta(p, 1, eps: 1e-4, maximize: true) },
        E("rmsprop-centered", (p, s) => RmsPropOptimizer.CenteredRmsProp(p, lr: 0.01 * s)) with { Reference = p => optim.RMSProp(p, 0.01, centered: true) },
        E("rmsprop-centered-momentum", (p, s) => RmsPropOptimizer.CenteredRmsProp(p, lr: 0.01 * s, momentum: 0.9, weight_decay: 0.05)) with {
            Reference = p => optim.RMSProp(p, 0.01, momentum: 0.9, weight_decay: 0.05, centered: true),
        },
        E("rmsprop-centered-momentum-only", (p, s) => RmsPropOptimizer.CenteredRmsProp(p, 0.01 * s, momentum: 0.9)) with { Reference = p => optim.RMSProp(p, 0.01, momentum: 0.9, centered: true) },
        E("rmsprop-centered-all-options", (p, s) => RmsPropOptimizer.Create(p, 0.005 * s, 0.9, 1e-6, 0.05, 0.5, true, true)) with {
            Reference = p => optim.RMSProp(p, 0.005, 0.9, 1e-6, 0.05, 0.5, true, true),
        },
        E("rmsprop-not-centered-momentum", (p, s) => RmsPropOptimizer.Create(p, 0.01 * s, momentum: 0.9, weight_decay: 0.05)) with {
            Reference = p => optim.RMSProp(p, 0.01, momentum: 0.9, weight_decay: 0.05),
        },
        // Matrix preconditioners.
        E("muon-adamw", (p, s) => MuonOptimizer.CreateWithAdamW(p, lr: 0.02 * s, adamw_lr: 1e-3 * s)) with { KeepsParameterOrder = false },
        E("soap", (p, s) => SoapOptimizer.Create(p, lr: 3e-3 * s, precondition_frequency: 2)) with { ExactGraftIdentities = false },
        E("soap-precondition-1d", (p, s) => SoapOptimizer.Create(p, lr: 3e-3 * s, precondition_frequency: 1, precondition_1d: true, weight_decay: 0)) with {
            ExactGraftIdentities = false,
        },
    };

    private static readonly Dictionary<string, OptimizerInfo> ByName = All.ToDictionary(e => e.Name, StringComparer.Ordinal);

    /// <summary>The entry called <paramref name="name"/>.</summary>
    public static OptimizerInfo Get(string name) => ByName[name];

    /// <summary>Builds entry <paramref name="name"/> over <paramref name="parameters"/>.</summary>
    public static optim.Optimizer Make(string name, IEnumerable<Parameter> parameters, double lrScale = 1, bool? fused = null) =>
        Get(name).Make(parameters, lrScale, fused);

    /// <summary>The names of the entries that pass <paramref name="filter"/> (every entry: null), for <c>[MemberData]</c>.</summary>
    public static TheoryData<string> Select(Func<OptimizerInfo, bool>? filter = null) =>
        new(All.Where(e => filter is null || filter(e)).Select(e => e.Name));

    /// <summary>Every entry's name.</summary>
    public static TheoryData<string> Names => Select();

    /// <summary>The entries whose optimizer keeps the caller's parameter order (see <see cref="OptimizerInfo.KeepsParameterOrder"/>).</summary>
    public static TheoryData<string> OrderKeepingNames => Select(e => e.KeepsParameterOrder);

    /// <summary>The entries of Algorithm 1 (<see cref="GenericSecondMomentOptimizer"/>).</summary>
    public static TheoryData<string> GenericNames => Select(IsGeneric);

    /// <summary>The entries of Algorithm 1 whose β1 (momentum) is positive, read from the optimizer each builds.</summary>
    public static TheoryData<string> GenericNamesWithMomentum => Select(e => IsGeneric(e) && TestTensors.DefaultsOf(GenericFactory(e.Name)).Beta1 > 0);

    /// <summary>The entries with a fused CPU kernel.</summary>
    public static TheoryData<string> FusedNames => Select(e => e.Has(Capability.FusedKernel));

    private static bool IsGeneric(OptimizerInfo e) => e.Type == typeof(GenericSecondMomentOptimizer);

    /// <summary>Entry <paramref name="name"/> of Algorithm 1 as a typed factory.</summary>
    public static Func<IEnumerable<Parameter>, GenericSecondMomentOptimizer> GenericFactory(string name)
    {
        var entry = Get(name);
        if (!IsGeneric(entry)) throw new ArgumentException($"{name} is not a GenericSecondMomentOptimizer entry.", nameof(name));
        return ps => (GenericSecondMomentOptimizer)entry.Factory(ps, 1);
    }

    /// <summary>Builds entry <paramref name="name"/> of Algorithm 1 over <paramref name="parameters"/>.</summary>
    public static GenericSecondMomentOptimizer CreateGeneric(string name, IEnumerable<Parameter> parameters) => GenericFactory(name)(parameters);

    // ---------------- Helpers over any entry ----------------

    /// <summary>Turns the fused CPU kernel of <paramref name="opt"/> on or off (its type must have one).</summary>
    public static void SetFused(optim.Optimizer opt, bool fused)
    {
        var property = opt.GetType().GetProperty("FusedCpuKernel", BindingFlags.Public | BindingFlags.Instance)
            ?? throw new ArgumentException($"{opt.GetType().Name} has no fused CPU kernel.", nameof(opt));
        property.SetValue(opt, fused);
    }

    /// <summary>How many tensor steps <paramref name="opt"/> took on its fused CPU kernel so far.</summary>
    public static long FusedCount(optim.Optimizer opt)
    {
        var property = opt.GetType().GetProperty("FusedTensorSteps", BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Instance)
            ?? throw new ArgumentException($"{opt.GetType().Name} has no fused CPU kernel.", nameof(opt));
        return (long)property.GetValue(opt)!;
    }

    /// <summary>The state <paramref name="opt"/> (a rule optimizer) keeps for <paramref name="parameter"/>.</summary>
    public static RuleState StateOf(optim.Optimizer opt, Parameter parameter)
    {
        var method = opt.GetType().GetMethod("StateOf", BindingFlags.Public | BindingFlags.Instance, new[] { typeof(Parameter) })
            ?? throw new ArgumentException($"{opt.GetType().Name} is not a rule optimizer.", nameof(opt));
        try {
            return (RuleState)method.Invoke(opt, new object[] { parameter })!;
        } catch (TargetInvocationException e) when (e.InnerException is not null) {
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(e.InnerException).Throw();
            throw;
        }
    }

    /// <summary>The optimizer's complete saved state as bytes (its tagged checkpoint).</summary>
    public static byte[] SaveState(optim.Optimizer opt) => StateBytes.Save(((IOptimizerCheckpoint)opt).SaveCheckpoint);

    /// <summary>Loads bytes written by <see cref="SaveState"/>.</summary>
    public static void LoadState(optim.Optimizer opt, byte[] bytes) => StateBytes.Load(bytes, reader => ((IOptimizerCheckpoint)opt).StageCheckpoint(reader)());

    /// <summary>Sum of the element counts of every allocated slot of every tensor state.</summary>
    public static long SlotElements(IEnumerable<RuleState> states) =>
        states.Sum(s => Enumerable.Range(0, s.SlotNames.Length).Select(s.GetSlot).Where(t => t is not null).Sum(t => t!.numel()));
}
