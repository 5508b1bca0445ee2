namespace AdaGraft.Optimizers;

/// <summary>
/// The TorchSharp plumbing shared by every rule-based optimizer: parameter groups with inherited defaults,
/// validation, <c>step</c>/<c>zero_grad</c>, state-dict save and load (validated before anything changes),
/// <c>to(device)</c> and disposal. A concrete optimizer supplies only its state factory and its
/// <see cref="Propose(TOptions, TState, Parameter, Tensor)"/> math.
/// </summary>
/// <typeparam name="TOptions">The hyperparameter record of one parameter group.</typeparam>
/// <typeparam name="TState">The per-tensor state.</typeparam>
public abstract partial class RuleOptimizer<TOptions, TState> : OptimizerHelper, IProposingOptimizer, IStateValidator, IOptimizerCheckpoint, Grafting.IDisposableState, ILoadStager, IGuardedProposer, IAlgorithmCheck
    where TOptions : RuleOptions, new()
    where TState : RuleState
{
    private readonly Dictionary<IntPtr, (TOptions options, TState state)> _byHandle = new();
    private bool _disposed;
    private readonly List<Action> _pendingLoad = new();
    private readonly List<Tensor?[]> _pendingTensors = new();
    private RuleState? _lastState;
    private bool _skipNonFinite;
    private Tensor? _skipped;

    /// <summary>Builds the optimizer over <paramref name="groups"/>; unset options come from <paramref name="defaults"/>.</summary>
    protected RuleOptimizer(IEnumerable<ParamGroup<TOptions>> groups, TOptions defaults)
    {
        ArgumentNullException.ThrowIfNull(groups, "parameters");
        ArgumentNullException.ThrowIfNull(defaults);
        defaults.InitialLearningRate = defaults.LearningRate ?? 0;
        defaults.RequireComplete(nameof(defaults));
        defaults.Validate();
        _defaults = defaults;
        _parameter_groups = new List<ParamGroup>();

        var list = groups.ToList();
        if (list.Count == 0 || list.All(g => g.Parameters is null || !g.Parameters.Any()))
            throw new ArgumentException("The optimizer was given no parameters; pass model.parameters() (or at least one tensor).", "parameters");
        foreach (var g in list) add_param_group(g);
    }

    /// <summary>The default options (used for parameter groups that leave an option unset).</summary>
    public TOptions Defaults => (TOptions)_defaults;

    /// <summary>The parameter groups, typed.</summary>
    public IEnumerable<ParamGroup<TOptions>> Groups => _parameter_groups.Cast<ParamGroup<TOptions>>();

    /// <summary>The state of <paramref name="parameter"/>.</summary>
    public TState StateOf(Parameter parameter)
    {
        ThrowIfDisposed();
        if (!_byHandle.TryGetValue(parameter.Handle, out var e))
            throw new ArgumentException("This parameter is not managed by the optimizer.", nameof(parameter));
        return e.state;
    }

    /// <summary>Creates the state of one parameter.</summary>
    protected abstract TState CreateState(Parameter parameter, TOptions options);

    /// <summary>The rule's math: update <paramref name="state"/> with <paramref name="grad"/>, return the step.</summary>
    protected abstract Proposal Propose(TOptions options, TState state, Parameter parameter, Tensor grad);

    /// <summary>One tensor of a step: its group's options, its state, the parameter and its gradient.</summary>
    protected internal readonly record struct TensorStep(TOptions Options, TState State, Parameter Parameter, Tensor Grad);

    /// <summary>
    /// Checks that a group's parameters suit its options (e.g. Muon's groups take matrices only); throws an
    /// <see cref="ArgumentException"/> naming the parameter and the fix. Called with the group's complete options when
    /// the group is added and before every step, before anything changes. Accepts everything unless overridden.
    /// </summary>
    protected virtual void ValidateGroup(TOptions options, IEnumerable<Parameter> parameters) { }

    /// <summary>
    /// Takes the step of every tensor the rule has a fused kernel for (e.g. contiguous CPU float32/float64), all in one
    /// parallel loop, and returns which it took (null or all false: none); the others take the eager
    /// <see cref="Propose(TOptions, TState, Parameter, Tensor)"/> path. Called after the step's checks passed; never
    /// for guarded (non-finite skipping) steps.
    /// </summary>
    protected virtual bool[]? TryFusedSteps(IReadOnlyList<TensorStep> tensors) => null;

    /// <summary>How many tensor steps a fused kernel has taken (diagnostics and tests).</summary>
    internal long FusedTensorSteps => _fusedSteps;

    private long _fusedSteps;

    /// <summary>
    /// <see cref="TryFusedSteps"/> for a rule with a fused CPU kernel: unless <paramref name="on"/> or the process-wide
    /// switch (<see cref="CpuSwitches.Fused"/>) says off, every tensor that qualifies takes <paramref name="kernel"/> with
    /// the constants and slot addresses <paramref name="plan"/> gives (see <see cref="FusedRules.Steps"/>).
    /// </summary>
    private protected bool[]? FusedSteps<TPlan>(bool on, IReadOnlyList<TensorStep> tensors, Func<TOptions, TState, (TPlan, FusedPointers)> plan,
        ChunkKernel<TPlan> kernel)
    {
        if (!CpuSwitches.Fused(on)) return null;
        // The step's own list gives the gradients as read, without making a managed tensor of each.
        if (tensors is StepList list)
            return FusedRules.Steps(list.Count, i => (list.State(i), list.Parameter(i), list.Grad(i)),
                i => plan(list.Options(i), list.State(i)), kernel, ref _fusedSteps);
        return FusedRules.Steps(tensors.Count, i => (tensors[i].State, tensors[i].Parameter, tensors[i].Grad),
            i => plan(tensors[i].Options, tensors[i].State), kernel, ref _fusedSteps);
    }

    /// <summary>The options and state of a managed parameter.</summary>
    internal (TOptions options, TState state) EntryOf(Parameter parameter)
    {
        ThrowIfDisposed();
        if (!_byHandle.TryGetValue(parameter.Handle, out var e))
            throw new ArgumentException("This parameter is not managed by the optimizer.", nameof(parameter));
        return e;
    }

    /// <summary>Adds a parameter group; unset options are inherited from the defaults. Validated before anything changes.</summary>
    public override void add_param_group(ParamGroup param_group)
    {
        ThrowIfDisposed();
        ArgumentNullException.ThrowIfNull(param_group);
        if (param_group.Parameters is null)
            throw new ArgumentException("The parameter group has no parameter list.", nameof(param_group));
        var parameters = param_group.Parameters.ToList();
        param_group.Parameters = parameters;
        param_group.Options ??= new TOptions();
        if (param_group.Options is not TOptions options)
            throw new ArgumentException($"The parameter group's options are {param_group.Options.GetType().Name}; this optimizer needs {typeof(TOptions).Name}.", nameof(param_group));

        var seen = new HashSet<IntPtr>();
        for (int i = 0; i < parameters.Count; i++) {
            var p = parameters[i];
            if (p is null) throw new ArgumentException($"Parameter {i} of the group is null.", nameof(param_group));
            if (p.IsInvalid) throw new ObjectDisposedException($"parameter {i}", "A parameter given to the optimizer was disposed.");
            if (!torch.is_floating_point(p))
                throw new ArgumentException($"Parameter {i} has dtype {p.dtype}; optimizers need floating-point parameters.", nameof(param_group));
            if (!seen.Add(p.Handle) || _byHandle.ContainsKey(p.Handle))
                throw new ArgumentException($"Parameter {i} (shape [{string.Join(", ", p.shape)}]) appears more than once; list each parameter in exactly one group.", nameof(param_group));
        }

        var candidate = new TOptions();
        candidate.LoadStateDict(options); // copy, so a failed validation leaves the caller's object as it was
        candidate.InheritFrom(Defaults);
        candidate.Validate();
        ValidateGroup(candidate, parameters);
        options.InheritFrom(Defaults);
        options.Stager = this;

        _parameter_groups.Add(param_group);
        foreach (var p in parameters) {
            var state = CreateState(p, options);
            state.Stager = this;
            _lastState = state;
            state.Initialize(options);
            _state[p.Handle] = state;
            _byHandle[p.Handle] = (options, state);
        }
        if (PacksSlots) PackSlots(parameters);
    }

    /// <summary>
    /// True for an optimizer whose fused kernel gains from <see cref="PackSlots"/> (slots shaped like the parameter,
    /// read and written once per step).
    /// </summary>
    private protected virtual bool PacksSlots => false;

    /// <summary>
    /// Lays out the slots of a new group's small CPU tensors end to end: slot k of every such tensor becomes a view of
    /// one buffer per dtype and slot, in parameter order (64-byte aligned). A fused step sweeps consecutive small tensors
    /// in one work item, and each jump to another allocation restarts a memory stream; this way the state's streams run
    /// on across the tensors. The numbers are the same (values are copied, the math does not change); a slot that is
    /// later replaced, loaded as a new tensor or moved simply stands alone again.
    /// </summary>
    private void PackSlots(List<Parameter> parameters)
    {
        var small = parameters.Where(p => NativeTensor.Numel(p) is > 0 and < FusedCpu.Chunk && FusedCpu.Eligible(p, NativeTensor.Dtype(p))
            && _byHandle[p.Handle].state.SlotsLikeParameter).ToList();
        using var scope = torch.NewDisposeScope();
        foreach (var ofType in small.GroupBy(p => NativeTensor.Dtype(p))) {
            var dtype = ofType.Key;
            for (int k = 0; k < _byHandle[ofType.First().Handle].state.SlotCount; k++) {
                var holders = ofType.Where(p => _byHandle[p.Handle].state.SlotAt(k) is Tensor t && FusedCpu.Eligible(t, dtype)).ToList();
                if (holders.Count < 2) continue;
                static long Aligned(long n) => (n + 15) / 16 * 16;
                // The buffer's own handle goes with the scope; the views keep its storage alive as long as one exists.
                var buffer = torch.empty(holders.Sum(p => Aligned(NativeTensor.Numel(p))), dtype);
                long offset = 0;
                foreach (var p in holders) {
                    long n = NativeTensor.Numel(p);
                    _byHandle[p.Handle].state.PlaceSlot(k, buffer.narrow(0, offset, n).view(p.shape).DetachFromDisposeScope());
                    offset += Aligned(n);
                }
            }
        }
    }

    /// <summary>
    /// Off (default): a NaN or Inf gradient flows into the state and parameters, as in <c>torch.optim</c>. On: a step
    /// in which any gradient has a NaN or Inf changes neither parameters nor state (bias correction included); the
    /// decision is made on the device, without a host synchronisation, at the cost of one backup copy of each state
    /// tensor and parameter per step. Skipped steps are counted in <see cref="SkippedSteps"/>.
    /// </summary>
    public bool SkipNonFiniteSteps {
        get => _skipNonFinite;
        set {
            ThrowIfDisposed();
            if (value) NonFinite.RequireOneDevice(parameters());
            _skipNonFinite = value;
            UseAppliedSteps(value);
        }
    }

    /// <summary>Skipped steps so far, as a 0-d device tensor (null before the first guarded step); reading it synchronises.</summary>
    public Tensor? SkippedStepsTensor => _skipped;

    /// <summary>Skipped steps so far (reads the device counter: a host synchronisation).</summary>
    public long SkippedSteps => _skipped is null ? 0 : (long)_skipped.item<double>();

    RuleState IGuardedProposer.GuardStateOf(Parameter parameter) => StateOf(parameter);

    /// <summary>Switches every state's device step count on or off.</summary>
    public void UseAppliedSteps(bool on)
    {
        foreach (var (_, state) in _byHandle.Values) state.UseAppliedSteps(on);
    }

    /// <summary>
    /// Validates, before anything changes and on the eager and the fused path alike: every group's options; every
    /// gradient (dense, the parameter's dtype, device and shape); every state that will be stepped (its slots still fit
    /// the parameter: no resize, <c>set_</c> or dtype change since it was built); and that no two parameters share memory.
    /// </summary>
    public void ValidateForStep()
    {
        using var scope = torch.NewDisposeScope();
        Validate(steps: null);
    }

    /// <inheritdoc />
    void IStateValidator.ValidateOptionsAndStates(IReadOnlySet<IntPtr> withGradient) => Validate(steps: null, withGradient);

    /// <summary>
    /// <see cref="ValidateForStep"/>; with <paramref name="withGradient"/> only the options and the states of the
    /// parameters it names (for a graft, which checks the gradients and shared memory once for both children and
    /// names the parameters that have a gradient, so no gradient is read here). With <paramref name="steps"/>, collects
    /// every tensor that has a gradient, each gradient read once (in the caller's dispose scope) and used by the checks
    /// and the step alike.
    /// </summary>
    private void Validate(StepList? steps, IReadOnlySet<IntPtr>? withGradient = null)
    {
        ThrowIfDisposed();
        int index = 0;
        foreach (var g in _parameter_groups) {
            var options = (TOptions)g.Options;
            options.Validate();
            ValidateGroup(options, g.Parameters);
            foreach (var p in g.Parameters) {
                if (withGradient is not null) {
                    if (withGradient.Contains(p.Handle)) _byHandle[p.Handle].state.CheckFits(index);
                    index++;
                    continue;
                }
                if (GradientChecks.Read(p) is TensorRef grad) {
                    bool kept = false;
                    try {
                        GradientChecks.Check(p, grad, index);
                        var state = _byHandle[p.Handle].state;
                        state.CheckFits(index);
                        if (steps is not null) {
                            steps.Add(options, state, p, grad);
                            kept = true;
                        }
                    } finally {
                        if (!kept) GradientChecks.Free(grad);
                    }
                }
                index++;
            }
        }
        if (withGradient is null) GradientChecks.CheckDisjoint(AllParameters());
    }

    private List<Parameter> AllParameters()
    {
        var all = new List<Parameter>();
        foreach (var g in _parameter_groups) all.AddRange(g.Parameters);
        return all;
    }

    /// <summary>
    /// Performs one optimization step. The closure, if given, is evaluated once with gradients enabled and its
    /// loss returned. Parameters without a gradient are skipped.
    /// </summary>
    public override Tensor step(Func<Tensor>? closure = null)
    {
        ThrowIfDisposed();
        Tensor? loss = null;
        if (closure is not null) {
            using var _ = torch.enable_grad();
            loss = closure();
        }
        if (_skipNonFinite) {
            ValidateForStep();
            GuardedStep();
            return loss!;
        }
        using (torch.no_grad())
        using (var gradients = torch.NewDisposeScope()) {
            var tensors = _stepList;
            try {
                Validate(tensors);
                // Tensors are independent (no two share memory: checked above), so the fused ones may go first, together.
                var fused = TryFusedSteps(tensors);
                for (int i = 0; i < tensors.Count; i++) {
                    if (fused is not null && fused[i]) continue;
                    var (options, state, p, grad) = tensors[i];
                    using var scope = torch.NewDisposeScope();
                    Propose(options, state, p, grad).ApplyTo(p);
                }
            } finally {
                tensors.Release();
            }
        }
        return loss!;
    }

    private void GuardedStep()
    {
        using var noGrad = torch.no_grad();
        using var scope = torch.NewDisposeScope();
        var withGrad = new List<(TOptions options, TState state, Parameter p, Tensor grad)>();
        foreach (var g in _parameter_groups) {
            foreach (var p in g.Parameters) {
                var grad = p.grad;
                if (grad is not null) withGrad.Add(((TOptions)g.Options, _byHandle[p.Handle].state, p, grad));
            }
        }
        if (withGrad.Count == 0) return;
        var ok = NonFinite.AllFinite(withGrad.Select(x => x.grad));
        foreach (var (options, state, p, grad) in withGrad) {
            state.Backup();
            Propose(options, state, p, grad).ApplyTo(p);
            state.KeepIf(ok);
        }
        _skipped ??= torch.zeros(Array.Empty<long>(), ScalarType.Float64, ok.device).DetachFromDisposeScope();
        _skipped.add_(ok.logical_not().to_type(ScalarType.Float64));
    }

    /// <inheritdoc />
    Proposal IProposingOptimizer.Propose(Parameter parameter, Tensor grad)
    {
        ThrowIfDisposed();
        if (!_byHandle.TryGetValue(parameter.Handle, out var e))
            throw new ArgumentException("This parameter is not managed by the optimizer.", nameof(parameter));
        return Propose(e.options, e.state, parameter, grad);
    }

    /// <summary>Throws <see cref="ObjectDisposedException"/> after <c>Dispose()</c>.</summary>
    protected void ThrowIfDisposed()
    {
        if (_disposed) throw new ObjectDisposedException(GetType().Name, "This optimizer was disposed; create a new one.");
    }

    /// <summary>True once disposed.</summary>
    public bool IsDisposed => _disposed;

    /// <summary>Frees every state tensor.</summary>
    protected override void Dispose(bool disposing)
    {
        if (!_disposed && disposing) {
            foreach (var (_, state) in _byHandle.Values) state.Dispose();
            DropPendingLoad();
            _skipped?.Dispose();
            _byHandle.Clear();
        }
        _disposed = true;
        base.Dispose(disposing);
    }
}
