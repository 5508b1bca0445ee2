namespace AdaGraft.Tests.Zoo;

/// <summary>
/// The direction-zoo optimizers under test, by name: each rule with its defaults and with the options that change
/// its code path (momentum off/on, weight decay, ε = 0, fixed β2, relative step). Each factory takes the parameters
/// and a learning-rate multiplier.
/// </summary>
public static class ZooCatalog
{
    public static readonly Dictionary<string, Func<IEnumerable<Parameter>, double, optim.Optimizer>> Factories = new() {
        ["yogi"] = (p, s) => YogiOptimizer.Create(p, lr: 0.01 * s),
        ["yogi-eps0-v0"] = (p, s) => YogiOptimizer.Create(p, lr: 0.01 * s, beta2: 0.9, eps: 0, initial_accumulator_value: 0),
        ["amsgrad"] = (p, s) => GenericSecondMomentOptimizer.AmsGrad(p, lr: 0.01 * s),
        ["adafactor"] = (p, s) => AdafactorOptimizer.Create(p, lr: 0.01 * s),
        ["adafactor-momentum-fixed-beta2"] = (p, s) => AdafactorOptimizer.Create(p, lr: 0.01 * s, beta1: 0.9, beta2: 0.99, clip_threshold: 0.5),
        ["adafactor-relative-step"] = (p, s) => AdafactorOptimizer.Create(p, lr: 0.01 * s, relative_step: true),
        ["lamb"] = (p, s) => LambOptimizer.Create(p, lr: 0.01 * s),
        ["lamb-no-bias-correction"] = (p, s) => LambOptimizer.Create(p, lr: 0.01 * s, weight_decay: 0, bias_correction: false, eps: 0),
        ["lars"] = (p, s) => LarsOptimizer.Create(p, lr: 0.5 * s, weight_decay: 0.01, trust_coefficient: 0.02),
        ["lars-no-momentum"] = (p, s) => LarsOptimizer.Create(p, lr: 0.5 * s, momentum: 0, trust_coefficient: 0.02),
        ["novograd"] = (p, s) => NovoGradOptimizer.Create(p, lr: 0.01 * s, weight_decay: 0.01),
        ["novograd-eps0"] = (p, s) => NovoGradOptimizer.Create(p, lr: 0.01 * s, eps: 0),
        ["lion"] = (p, s) => LionOptimizer.Create(p, lr: 1e-3 * s),
        ["lion-weight-decay"] = (p, s) => LionOptimizer.Create(p, lr: 1e-3 * s, weight_decay: 0.5),
        // TorchSharp's other second-moment built-ins, as rules (drop-ins with TorchSharp's numbers).
        ["nadam"] = (p, s) => NAdamOptimizer.Create(p, lr: 0.01 * s),
        ["nadam-weight-decay"] = (p, s) => NAdamOptimizer.Create(p, lr: 0.01 * s, weight_decay: 0.05, momentum_decay: 0.01),
        ["radam"] = (p, s) => RAdamOptimizer.Create(p, lr: 0.01 * s, beta2: 0.99),
        ["radam-paper-weight-decay"] = (p, s) => RAdamOptimizer.CreatePaper(p, lr: 0.01 * s, beta2: 0.99, weight_decay: 0.05),
        ["adamax"] = (p, s) => AdamaxOptimizer.Create(p, lr: 0.01 * s),
        ["adamax-eps0"] = (p, s) => AdamaxOptimizer.Create(p, lr: 0.01 * s, eps: 0, weight_decay: 0.05),
        ["adadelta"] = (p, s) => AdadeltaOptimizer.Create(p, lr: 1.0 * s),
        ["adadelta-weight-decay"] = (p, s) => AdadeltaOptimizer.Create(p, lr: 1.0 * s, rho: 0.95, weight_decay: 0.05),
        ["rmsprop-centered"] = (p, s) => RmsPropOptimizer.CenteredRmsProp(p, lr: 0.01 * s),
        ["rmsprop-centered-momentum"] = (p, s) => RmsPropOptimizer.CenteredRmsProp(p, lr: 0.01 * s, momentum: 0.9, weight_decay: 0.05),
    };

    public static optim.Optimizer Make(string name, IEnumerable<Parameter> ps, double lrScale = 1) => Factories[name](ps, lrScale);

    public static TheoryData<string> Names {
        get {
            var data = new TheoryData<string>();
            foreach (var name in Factories.Keys) data.Add(name);
            return data;
        }
    }

    /// <summary>The optimizer's complete saved state as bytes (through its own <c>save_state_dict(BinaryWriter)</c>).</summary>
    public static byte[] SaveState(optim.Optimizer opt)
    {
        using var stream = new MemoryStream();
        using (var writer = new BinaryWriter(stream, System.Text.Encoding.UTF8, leaveOpen: true)) {
            Save(opt, writer);
            writer.Flush();
        }
        return stream.ToArray();
    }

    /// <summary>Loads bytes written by <see cref="SaveState"/>.</summary>
    public static void LoadState(optim.Optimizer opt, byte[] bytes)
    {
        using var stream = new MemoryStream(bytes, writable: false);
        using var reader = new BinaryReader(stream);
        Load(opt, reader);
    }

    private static void Save(optim.Optimizer opt, BinaryWriter w)
    {
        switch (opt) {
            case YogiOptimizer o: o.save_state_dict(w); break;
            case AdafactorOptimizer o: o.save_state_dict(w); break;
            case LambOptimizer o: o.save_state_dict(w); break;
            case LarsOptimizer o: o.save_state_dict(w); break;
            case NovoGradOptimizer o: o.save_state_dict(w); break;
            case LionOptimizer o: o.save_state_dict(w); break;
            case NAdamOptimizer o: o.save_state_dict(w); break;
            case RAdamOptimizer o: o.save_state_dict(w); break;
            case AdamaxOptimizer o: o.save_state_dict(w); break;
            case AdadeltaOptimizer o: o.save_state_dict(w); break;
            case RmsPropOptimizer o: o.save_state_dict(w); break;
            case GenericSecondMomentOptimizer o: o.save_state_dict(w); break;
            default: throw new ArgumentException($"No saver for {opt.GetType().Name}.", nameof(opt));
        }
    }

    private static void Load(optim.Optimizer opt, BinaryReader r)
    {
        switch (opt) {
            case YogiOptimizer o: o.load_state_dict(r); break;
            case AdafactorOptimizer o: o.load_state_dict(r); break;
            case LambOptimizer o: o.load_state_dict(r); break;
            case LarsOptimizer o: o.load_state_dict(r); break;
            case NovoGradOptimizer o: o.load_state_dict(r); break;
            case LionOptimizer o: o.load_state_dict(r); break;
            case NAdamOptimizer o: o.load_state_dict(r); break;
            case RAdamOptimizer o: o.load_state_dict(r); break;
            case AdamaxOptimizer o: o.load_state_dict(r); break;
            case AdadeltaOptimizer o: o.load_state_dict(r); break;
            case RmsPropOptimizer o: o.load_state_dict(r); break;
            case GenericSecondMomentOptimizer o: o.load_state_dict(r); break;
            default: throw new ArgumentException($"No loader for {opt.GetType().Name}.", nameof(opt));
        }
    }

    /// <summary>Sum of the element counts of every allocated slot of every tensor state.</summary>
    public static long SlotElements(IEnumerable<Rules.RuleState> states) =>
        states.Sum(s => Enumerable.Range(0, s.SlotNames.Length).Select(s.GetSlot).Where(t => t is not null).Sum(t => t!.numel()));
}
