using AdaGraft.Optimizers;
using static TorchSharp.torch.optim;

namespace AdaGraft.Grafting;

/// <summary>
/// AdaGraft (Algorithms 2 and 3 of Agarwal, Anil, Hazan, Koren and Zhang, 2020, "Disentangling Adaptive Gradient
/// Methods from Learning Rates"): each step takes its norm from the magnitude optimizer M and its direction from
/// the direction optimizer D, both given the same gradient at the same iterate.
/// </summary>
/// <remarks>
/// <code>
/// g   ← ∇f(w)                       (one gradient; p.grad is never modified)
/// ΔM  ← M(w, g) − w,  ΔD ← D(w, g) − w   (both advance their own state)
/// w   ← w + ‖ΔM‖ / ‖ΔD‖ · ΔD       (per tensor, per block or global; ratio 0 where ‖ΔD‖ = 0)
/// </code>
/// <para>Closed form (both children are <see cref="IProposingOptimizer"/>s, e.g.
/// <see cref="GenericSecondMomentOptimizer"/>): the proposals are computed without touching the parameters.
/// Black box (Algorithm 3, any TorchSharp optimizer that updates in place): w is saved to a scratch buffer allocated
/// once, M steps, ΔM is measured, w is restored, D steps, ΔD is measured, and the two are combined. Both paths give
/// the same numbers.</para>
/// <para>The learning rate, and so any LR scheduler attached to the graft, belongs to M: <c>ParamGroups</c> are M's.
/// D's learning rate cancels out; on the black-box path keep it at 1 (or any value where D's step is well above the
/// parameters' round-off) so that <c>D(w) − w</c> is measured precisely (paper, section C.1).</para>
/// <para>Momentum and betas belong to both: a scheduler that cycles them on the graft (<c>OneCycleLR</c>, <c>CyclicLR</c>
/// with <c>cycle_momentum</c>) sets them on <c>ParamGroups</c>, and before each step every β1 or β2 of an M group that
/// changed since the last step is copied to D's group of the same index (where D's group has one), so that
/// Graft(A, A′) stays A under such a schedule. D's own β1 and β2 are kept until M's change; the graft's <c>Momentum</c>
/// and <c>Betas</c> properties set both children. A save writes D with the values it follows.</para>
/// </remarks>
public sealed partial class GraftOptimizer : OptimizerHelper, IMomentum, IBetas, IOptimizerCheckpoint
{
    private readonly Optimizer _magnitude;
    private readonly Optimizer _direction;
    private readonly IProposingOptimizer? _closedM;
    private readonly IProposingOptimizer? _closedD;
    private readonly Parameter[] _params;
    private readonly Tensor?[] _saved;
    private readonly Tensor?[] _work;
    private readonly Tensor?[] _momentum;
    private readonly Dictionary<ScalarType, Tensor> _fusedScratch = new();
    private readonly FusedCpu.WriteMark?[] _marks;
    private Tensor?[]? _momentumBackup;
    private bool _skipNonFinite;
    private Tensor? _skipped;
    private GraftStepNorms? _last;
    private bool _disposed;

    /// <summary>Grafts <paramref name="magnitude"/>'s step norms onto <paramref name="direction"/>'s step directions.</summary>
    /// <param name="magnitude">M: supplies ‖Δ‖ (and the learning rate).</param>
    /// <param name="direction">D: supplies Δ/‖Δ‖. Must manage the same parameters in the same order as M.</param>
    /// <param name="options">Granularity, ε, path and ownership; defaults to per-tensor, ε = 0, automatic path.</param>
    public GraftOptimizer(Optimizer magnitude, Optimizer direction, GraftOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(magnitude);
        ArgumentNullException.ThrowIfNull(direction);
        options ??= new GraftOptions();
        options.Validate();
        if (ReferenceEquals(magnitude, direction))
            throw new ArgumentException("The same optimizer instance was passed as magnitude and direction; build two instances (they keep separate state).", nameof(direction));
        ThrowIfChildDisposed(magnitude, nameof(magnitude));
        ThrowIfChildDisposed(direction, nameof(direction));

        var pm = magnitude.parameters().ToArray();
        var pd = direction.parameters().ToArray();
        if (pm.Length == 0)
            throw new ArgumentException("The magnitude optimizer manages no parameters.", nameof(magnitude));
        for (int i = 0; i < Math.Max(pm.Length, pd.Length); i++) {
            if (i >= pm.Length || i >= pd.Length)
                throw new ArgumentException($"M manages {pm.Length} parameters but D manages {pd.Length}; the first difference is at parameter {i}. Build both over the same parameters in the same order.", nameof(direction));
            if (pm[i].Handle != pd[i].Handle)
                throw new ArgumentException($"Parameter {i} differs: M has a tensor of shape [{string.Join(", ", pm[i].shape)}], D has a different tensor of shape [{string.Join(", ", pd[i].shape)}]. Build both over the same parameters in the same order.", nameof(direction));
        }
        var mGroups = magnitude.ParamGroups.ToList();
        var dGroups = direction.ParamGroups.ToList();
        if (mGroups.Count != dGroups.Count)
            throw new ArgumentException($"M has {mGroups.Count} parameter groups but D has {dGroups.Count}; give both the same group structure.", nameof(direction));
        if (options.Granularity == GraftGranularity.PerBlock) {
            for (int i = 0; i < pm.Length; i++) {
                if (!pm[i].is_contiguous())
                    throw new ArgumentException($"Parameter {i} is not contiguous; per-block grafting needs contiguous parameters.", nameof(magnitude));
            }
        }

        bool closedAvailable = magnitude is IProposingOptimizer && direction is IProposingOptimizer;
        if (options.Path == GraftPath.ClosedForm && !closedAvailable)
            throw new ArgumentException("The closed-form path needs both children to be AdaGraft rule-based optimizers (IProposingOptimizer); use GraftPath.BlackBox or Auto.", nameof(options));
        bool closed = options.Path == GraftPath.ClosedForm || (options.Path == GraftPath.Auto && closedAvailable);
        if (options.Point == GraftPoint.BeforeMomentum) {
            if (!closed)
                throw new ArgumentException("GraftPoint.BeforeMomentum needs both children to be AdaGraft rule-based optimizers (closed-form path).", nameof(options));
            foreach (var (child, name) in new[] { (magnitude, nameof(magnitude)), (direction, nameof(direction)) }) {
                if (child.ParamGroups.OfType<IMomentum>().Any(g => g.Momentum != 0))
                    throw new ArgumentException($"With GraftPoint.BeforeMomentum the graft applies the momentum; build the {name} optimizer with momentum 0.", name);
            }
        }

        _magnitude = magnitude;
        _direction = direction;
        _closedM = closed ? (IProposingOptimizer)magnitude : null;
        _closedD = closed ? (IProposingOptimizer)direction : null;
        _params = pm;
        _saved = new Tensor?[pm.Length];
        _work = new Tensor?[pm.Length];
        _momentum = new Tensor?[pm.Length];
        _marks = new FusedCpu.WriteMark?[pm.Length];
        Options = options;
        // TorchSharp's OptimizerHelper.to(Device) is not virtual: called through an OptimizerHelper reference it walks
        // _parameter_groups and _state. One internal group over the grafted parameters and one state per parameter,
        // the first of which moves the whole graft, make that call do what GraftOptimizer.to does (the group is not
        // exposed: ParamGroups are M's, and state_dict, zero_grad and parameters are overridden).
        _parameter_groups = new List<TorchSharp.Modules.ParamGroup> { new() { Parameters = pm, Options = new OptimizerOptions { LearningRate = 0 } } };
        for (int i = 0; i < pm.Length; i++) _state[pm[i].Handle] = new MoveAll(pm[i], i == 0 ? this : null);
        SeeMoments();
    }

    /// <summary>The options this graft was built with.</summary>
    public GraftOptions Options { get; }

    /// <summary>M, the magnitude optimizer.</summary>
    public Optimizer Magnitude => _magnitude;

    /// <summary>D, the direction optimizer.</summary>
    public Optimizer Direction => _direction;

    /// <summary>True when steps use the closed-form path, false for the black-box path.</summary>
    public bool IsClosedForm => _closedM is not null;

    /// <summary>Raised after every step, once <see cref="LastNorms"/> holds that step's norms (used by recorders).</summary>
    public event Action<GraftOptimizer>? Stepped;

    /// <summary>The norms of the last step (device tensors; null before the first step).</summary>
    public GraftStepNorms? LastNorms => _last;

    /// <summary>M's parameter groups: LR schedulers on the graft drive M's learning rate.</summary>
    public override IEnumerable<ILearningRateController> ParamGroups => _magnitude.ParamGroups;

    /// <summary>
    /// Off (default): non-finite gradients flow through as in <c>torch.optim</c>. On (closed-form path only): a step
    /// whose gradient has a NaN or Inf changes neither the parameters nor either child's state nor the graft's own
    /// momentum, decided on the device without a host synchronisation; <see cref="SkippedSteps"/> counts them.
    /// </summary>
    public bool SkipNonFiniteSteps {
        get => _skipNonFinite;
        set {
            ThrowIfDisposed();
            if (value && !IsClosedForm)
                throw new NotSupportedException("SkipNonFiniteSteps needs the closed-form path (rule-based children): a black-box child's state cannot be restored on the device.");
            if (value && Options.ReduceSquaredNorms is not null)
                throw new NotSupportedException("SkipNonFiniteSteps cannot be combined with GraftOptions.ReduceSquaredNorms: each shard would decide the skip from its own gradients while the reduced norms mix every shard's. Check finiteness across shards yourself (all-reduce a flag) and skip the step on all of them.");
            if (value) RequireGuardableChildren();
            _skipNonFinite = value;
            ((IGuardedProposer)_magnitude).UseAppliedSteps(value);
            ((IGuardedProposer)_direction).UseAppliedSteps(value);
        }
    }

    /// <summary>Skipped steps so far (reads a device counter: a host synchronisation).</summary>
    public long SkippedSteps => _skipped is null ? 0 : (long)_skipped.item<double>();

    /// <summary>The grafted parameters (M's, in order).</summary>
    public override IEnumerable<Parameter> parameters() => _params;

    /// <summary>Not supported: add the group to both children before building the graft.</summary>
    public override void add_param_group(TorchSharp.Modules.ParamGroup param_group) =>
        throw new NotSupportedException("Add parameter groups to M and D, then build a new GraftOptimizer over them.");

    /// <summary>Sets every parameter's gradient to zero.</summary>
    public override void zero_grad()
    {
        ThrowIfDisposed();
        foreach (var p in _params) {
            using var grad = p.grad;
            grad?.zero_();
        }
    }

    /// <summary>
    /// One grafted step. The closure, if given, is evaluated once (with gradients enabled) and its loss returned;
    /// both children then see the same gradients.
    /// </summary>
    public override Tensor step(Func<Tensor>? closure = null)
    {
        ThrowIfDisposed();
        ThrowIfChildDisposed(_magnitude, "magnitude");
        ThrowIfChildDisposed(_direction, "direction");
        Tensor? loss = null;
        if (closure is not null) {
            using var _ = torch.enable_grad();
            loss = closure();
        }
        // Momentum or betas a scheduler set on the graft's (M's) groups reach D before the checks (undone if they fail).
        var undoMoments = FollowMagnitudeMoments();
        TensorRef?[] grads;
        try {
            grads = ValidateForStep();
        } catch {
            undoMoments?.Invoke();
            throw;
        }

        try {
            using var noGrad = torch.no_grad();
            using var scope = torch.NewDisposeScope();
            // The paths, each in its own file (GraftOptimizer.<path>.cs), asked in order; the first that accepts steps.
            // A fused path returns null, having changed nothing, when some tensor or child does not qualify.
            var next = IsClosedForm
                ? _skipNonFinite ? GuardedClosedFormStep() : TryFusedClosedFormStep(grads) ?? ClosedFormStep()
                : TryFusedBlackBoxStep(grads) ?? BlackBoxStep();
            next.DetachAll();
            _last?.Dispose();
            _last = next.Build();
        } finally {
            foreach (var g in grads) GradientChecks.Free(g);
        }
        Stepped?.Invoke(this);
        return loss!;
    }

    /// <summary>
    /// Everything a step checks before it changes anything, the same for every path: the graft checks the gradients
    /// (dtype, device, shape) and shared memory once; rule-based children check their options and their states' fit (a
    /// built-in child's own state is checked by its own step: if that throws, the parameters are restored); and the
    /// graft's own momentum must still fit. Returns each parameter's gradient (null where it has none), read once for
    /// the step; the caller disposes them.
    /// </summary>
    private TensorRef?[] ValidateForStep()
    {
        // The gradients and shared memory once for both children; then each rule-based child its options and states
        // (on the black-box path too, before the graft saves anything). A proposing child of another library, which
        // has no separate state check, runs its whole ValidateForStep.
        var grads = new TensorRef?[_params.Length];
        try {
            ValidateForStep(grads);
        } catch {
            foreach (var g in grads) GradientChecks.Free(g);
            throw;
        }
        return grads;
    }

    private void ValidateForStep(TensorRef?[] grads)
    {
        for (int i = 0; i < _params.Length; i++) {
            grads[i] = GradientChecks.Read(_params[i]);
            if (grads[i] is TensorRef grad) GradientChecks.Check(_params[i], grad, i);
        }
        GradientChecks.CheckDisjoint(_params);
        var withGradient = new HashSet<IntPtr>();
        for (int i = 0; i < _params.Length; i++) if (grads[i] is not null) withGradient.Add(_params[i].Handle);
        foreach (var child in new[] { _magnitude, _direction }) {
            if (child is IStateValidator own) own.ValidateOptionsAndStates(withGradient);
            else (child as IProposingOptimizer)?.ValidateForStep();
        }
        for (int i = 0; i < _params.Length; i++) {
            if (_momentum[i] is not Tensor m) continue;
            var p = _params[i];
            if (!TensorLayout.SameLayout(m, p))
                throw new InvalidOperationException(
                    $"The graft's momentum of the {TensorLayout.Describe(p, i)} is {m.dtype} {TensorLayout.Shape(m.shape)} on {m.device}, but "
                    + $"the parameter is now {p.dtype} on {p.device}: it was resized, replaced (set_) or converted after the graft was built. "
                    + "Build a new graft over the changed parameters.");
        }
    }

    /// <summary>Moves both children's state (and the graft's scratch) to <paramref name="device"/>.</summary>
    public new void to(Device device)
    {
        ThrowIfDisposed();
        MoveChild(_magnitude, device);
        MoveChild(_direction, device);
        for (int i = 0; i < _momentum.Length; i++) {
            if (_momentum[i] is Tensor m) {
                _momentum[i] = m.to(device).DetachFromDisposeScope();
                if (!ReferenceEquals(_momentum[i], m)) m.Dispose();
            }
        }
        foreach (var t in _fusedScratch.Values) t.Dispose();
        _fusedScratch.Clear();
        for (int i = 0; i < _saved.Length; i++) {
            _saved[i]?.Dispose();
            _saved[i] = null;
            _work[i]?.Dispose();
            _work[i] = null;
        }
    }

    /// <summary>The per-parameter state TorchSharp's <c>OptimizerHelper.to</c> walks; the first one moves the graft.</summary>
    private sealed class MoveAll(Parameter parameter, GraftOptimizer? graft) : OptimizerState(parameter)
    {
        public override void to(Device device) => graft?.to(device);

        public override void Initialize(OptimizerOptions options) { }

        public override void SaveStateDict(BinaryWriter writer) => throw new NotSupportedException("Save the graft with save_state_dict.");

        public override void LoadStateDict(BinaryReader reader) => throw new NotSupportedException("Load the graft with load_state_dict.");

        public override void LoadStateDict(OptimizerState source) => throw new NotSupportedException("Load the graft with load_state_dict.");
    }

    private static void MoveChild(Optimizer child, Device device)
    {
        if (child is OptimizerHelper helper) helper.to(device);
    }

    private static void ThrowIfChildDisposed(Optimizer child, string name)
    {
        if (child is IDisposableState { IsDisposed: true })
            throw new ObjectDisposedException(name, $"The {name} optimizer was disposed; build the graft over live optimizers.");
    }

    private void ThrowIfDisposed()
    {
        if (_disposed) throw new ObjectDisposedException(nameof(GraftOptimizer), "This GraftOptimizer was disposed; create a new one.");
    }

    /// <summary>Frees the scratch buffers and the last norms; disposes the children when <see cref="GraftOptions.OwnsChildren"/>.</summary>
    protected override void Dispose(bool disposing)
    {
        if (!_disposed && disposing) {
            foreach (var t in _saved) t?.Dispose();
            foreach (var t in _fusedScratch.Values) t.Dispose();
            _fusedScratch.Clear();
            foreach (var t in _work) t?.Dispose();
            foreach (var t in _momentum) t?.Dispose();
            foreach (var m in _marks) m?.Dispose();
            if (_momentumBackup is not null) foreach (var t in _momentumBackup) t?.Dispose();
            _skipped?.Dispose();
            _last?.Dispose();
            _last = null;
            if (Options.OwnsChildren) {
                _magnitude.Dispose();
                _direction.Dispose();
            }
        }
        _disposed = true;
        base.Dispose(disposing);
    }
}

/// <summary>An optimizer that knows whether it was disposed.</summary>
internal interface IDisposableState
{
    bool IsDisposed { get; }
}
