using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using AdaGraft.Rules;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace AdaGraft.Optimizers;

/// <summary>
/// An optimizer that can propose a step for one tensor without applying it. The closed-form grafting path
/// asks two of these for proposals and combines them itself.
/// </summary>
public interface IProposingOptimizer
{
    /// <summary>
    /// Advances this optimizer's state for <paramref name="parameter"/> with <paramref name="grad"/> and returns
    /// the step it would take, without changing the parameter. Must be called inside <c>torch.no_grad()</c>.
    /// </summary>
    Proposal Propose(Parameter parameter, Tensor grad);

    /// <summary>Validates hyperparameters and gradients before a step (throws before anything changes).</summary>
    void ValidateForStep();
}

/// <summary>An optimizer that can compare a checkpoint's algorithm with its own before loading it (used by grafts).</summary>
internal interface IAlgorithmCheck
{
    /// <summary>The algorithm differences between the saved optimizer in <paramref name="reader"/> (header and options only) and this one.</summary>
    List<string> CheckpointSwitchDifferences(BinaryReader reader);

    /// <summary>The algorithm differences between saved group options and this optimizer's groups.</summary>
    List<string> SwitchDifferences(IReadOnlyList<OptimizerOptions> saved);
}

/// <summary>A proposing optimizer whose per-tensor state can be backed up and restored on the device.</summary>
internal interface IGuardedProposer
{
    RuleState GuardStateOf(Parameter parameter);

    void UseAppliedSteps(bool on);
}

/// <summary>Device-side finiteness checks shared by the optimizers that can skip non-finite steps.</summary>
internal static class NonFinite
{
    /// <summary>A 0-d bool tensor: true when every gradient is finite. No host synchronisation.</summary>
    public static Tensor AllFinite(IEnumerable<Tensor> grads)
    {
        // A float64 sum of a float32/float16 tensor cannot overflow, so it is finite exactly when every element is.
        var flags = grads.Select(g => g.sum(ScalarType.Float64).isfinite().view(1)).ToArray();
        return torch.cat(flags, 0).all();
    }

    /// <summary>Throws unless every parameter is on one device (needed to combine flags without a host copy).</summary>
    public static void RequireOneDevice(IEnumerable<Parameter> ps)
    {
        var devices = ps.Select(p => (p.device_type, p.device_index)).Distinct().ToList();
        if (devices.Count > 1)
            throw new NotSupportedException("SkipNonFiniteSteps needs all parameters on one device (the skip is decided on the device without a host synchronisation).");
    }
}

/// <summary>
/// The TorchSharp plumbing shared by every rule-based optimizer: parameter groups with inherited defaults,
/// validation, <c>step</c>/<c>zero_grad</c>, state-dict save and load (validated before anything changes),
/// <c>to(device)</c> and disposal. A concrete optimizer supplies only its state factory and its
/// <see cref="Propose(TOptions, TState, Parameter, Tensor)"/> math.
/// </summary>
/// <typeparam name="TOptions">The hyperparameter record of one parameter group.</typeparam>
/// <typeparam name="TState">The per-tensor state.</typeparam>
public abstract class RuleOptimizer<TOptions, TState> : OptimizerHelper, IProposingOptimizer, IOptimizerCheckpoint, Grafting.IDisposableState, ILoadStager, IGuardedProposer, IAlgorithmCheck
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
    /// Takes the step of every tensor the rule has a fused kernel for (e.g. contiguous CPU float32/float64), all in one
    /// parallel loop, and returns which it took (null or all false: none); the others take the eager
    /// <see cref="Propose(TOptions, TState, Parameter, Tensor)"/> path. Called after the step's checks passed; never
    /// for guarded (non-finite skipping) steps.
    /// </summary>
    protected virtual bool[]? TryFusedSteps(IReadOnlyList<TensorStep> tensors) => null;

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
        ThrowIfDisposed();
        int index = 0;
        foreach (var g in _parameter_groups) {
            ((TOptions)g.Options).Validate();
            foreach (var p in g.Parameters) {
                if (GradientChecks.Check(p, index)) _byHandle[p.Handle].state.CheckFits(index);
                index++;
            }
        }
        GradientChecks.CheckDisjoint(AllParameters());
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
        ValidateForStep();
        if (_skipNonFinite) {
            GuardedStep();
            return loss!;
        }
        using (torch.no_grad())
        using (var gradients = torch.NewDisposeScope()) {
            var tensors = new List<TensorStep>();
            foreach (var g in _parameter_groups) {
                var options = (TOptions)g.Options;
                foreach (var p in g.Parameters) {
                    var grad = p.grad;
                    if (grad is not null) tensors.Add(new TensorStep(options, _byHandle[p.Handle].state, p, grad));
                }
            }
            // Tensors are independent (no two share memory: checked above), so the fused ones may go first, together.
            var fused = TryFusedSteps(tensors);
            for (int i = 0; i < tensors.Count; i++) {
                if (fused is not null && fused[i]) continue;
                using var scope = torch.NewDisposeScope();
                var (options, state, p, grad) = tensors[i];
                Propose(options, state, p, grad).ApplyTo(p);
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

    /// <summary>Moves the state to <paramref name="device"/>.</summary>
    public new void to(Device device)
    {
        ThrowIfDisposed();
        base.to(device);
    }

    /// <summary>
    /// Writes the optimizer as a tagged checkpoint (see <see cref="IOptimizerCheckpoint"/>): the tag and format
    /// version, then TorchSharp's layout (type, options of every group, state of every tensor).
    /// </summary>
    public new void save_state_dict(BinaryWriter writer) => SaveCheckpoint(writer);

    /// <inheritdoc />
    public void SaveCheckpoint(BinaryWriter writer)
    {
        ThrowIfDisposed();
        ArgumentNullException.ThrowIfNull(writer);
        Checkpoint.WriteHeader(writer, GetType().Name);
        base.save_state_dict(writer);
    }

    /// <inheritdoc />
    public Action StageCheckpoint(BinaryReader reader)
    {
        ThrowIfDisposed();
        ArgumentNullException.ThrowIfNull(reader);
        return Stage(reader);
    }

    /// <summary>
    /// Saves to a file atomically: the state is written to a temporary file beside <paramref name="location"/> that
    /// then replaces it, so a crash during the save leaves the previous file intact. The save also deletes the
    /// temporary files of <paramref name="location"/> left by writers that were killed and no longer run.
    /// </summary>
    public new void save_state_dict(string location)
    {
        ThrowIfDisposed();
        AtomicFile.Write(location, save_state_dict);
    }

    /// <summary>
    /// Loads what <see cref="save_state_dict(BinaryWriter)"/> wrote, or TorchSharp's generic format (what
    /// <c>OptimizerHelper.save_state_dict</c> writes through a base-class reference). Everything is read and validated
    /// (type, group count, options, shapes, dtypes, length) before any option or state changes.
    /// </summary>
    /// <remarks>
    /// As PyTorch's <c>load_state_dict</c> does, the file's numeric hyperparameters (learning rate, betas, ε, weight
    /// decay, …) replace this optimizer's. Its algorithm must be this one's: a file whose convention switches differ
    /// (every <c>bool</c> and enum option, e.g. a <c>TorchAdam</c> checkpoint loaded into a <c>HeavyBall</c> optimizer,
    /// which is the same class) raises an <see cref="InvalidDataException"/> naming each difference, before
    /// anything changes.
    /// </remarks>
    public new void load_state_dict(BinaryReader reader)
    {
        ThrowIfDisposed();
        var commit = Stage(reader);
        commit();
    }

    /// <summary>Loads a file written by <see cref="save_state_dict(string)"/>; see <see cref="load_state_dict(BinaryReader)"/>.</summary>
    public new void load_state_dict(string location)
    {
        ThrowIfDisposed();
        using var stream = File.OpenRead(location);
        using var reader = new BinaryReader(stream);
        var commit = Stage(reader);
        if (stream.Position != stream.Length)
            throw new InvalidDataException($"{location} has {stream.Length - stream.Position} bytes after the optimizer state: the file is corrupted or was written by another optimizer.");
        commit();
    }

    /// <summary>Sets every parameter's gradient to zero.</summary>
    public override void zero_grad()
    {
        ThrowIfDisposed();
        base.zero_grad();
    }

    /// <summary>The options of every group and the state of every tensor (live objects, not copies).</summary>
    public override StateDictionary state_dict()
    {
        ThrowIfDisposed();
        return base.state_dict();
    }

    /// <summary>
    /// Loads options and state from another optimizer's state dict (validated before anything changes). Its numeric
    /// hyperparameters replace this optimizer's; a state dict of another algorithm (different convention switches)
    /// raises an <see cref="InvalidDataException"/>.
    /// </summary>
    public override void load_state_dict(StateDictionary state_dict)
    {
        ThrowIfDisposed();
        ArgumentNullException.ThrowIfNull(state_dict);
        var sd = this.state_dict();
        if (state_dict.Options.Count != sd.Options.Count)
            throw new ArgumentException($"The state dict has {state_dict.Options.Count} parameter groups but this optimizer has {sd.Options.Count}.", nameof(state_dict));
        if (state_dict.State.Count != sd.State.Count)
            throw new ArgumentException($"The state dict has {state_dict.State.Count} tensor states but this optimizer has {sd.State.Count}.", nameof(state_dict));
        for (int i = 0; i < sd.Options.Count; i++) {
            if (state_dict.Options[i] is not TOptions o)
                throw new ArgumentException($"Group {i}'s options are {state_dict.Options[i]?.GetType().Name}; this optimizer needs {typeof(TOptions).Name}.", nameof(state_dict));
            o.Validate();
        }
        var differences = SwitchDifferences(state_dict.Options);
        if (differences.Count > 0) throw RuleOptions.AlgorithmMismatch(GetType().Name, differences);
        for (int i = 0; i < sd.State.Count; i++) {
            if (state_dict.State[i] is not TState s || !s.Parameter.shape.SequenceEqual(((TState)sd.State[i]).Parameter.shape))
                throw new ArgumentException($"Tensor state {i} is not a {typeof(TState).Name} of the same shape.", nameof(state_dict));
        }
        base.load_state_dict(state_dict);
    }

    void ILoadStager.Stage(RuleOptions target, RuleOptions staged)
    {
        if (ReferenceEquals(target, _parameter_groups[0].Options)) DropPendingLoad();
        _pendingLoad.Add(() => target.LoadStateDict(staged));
    }

    void ILoadStager.Stage(RuleState target, long step, Tensor?[] slots)
    {
        _pendingTensors.Add(slots);
        _pendingLoad.Add(() => target.Commit(step, slots));
        if (!ReferenceEquals(target, _lastState)) return;
        foreach (var apply in _pendingLoad) apply();
        _pendingLoad.Clear();
        _pendingTensors.Clear();
    }

    private void DropPendingLoad()
    {
        foreach (var slots in _pendingTensors) foreach (var t in slots) t?.Dispose();
        _pendingTensors.Clear();
        _pendingLoad.Clear();
    }

    /// <summary>
    /// Reads the header, counts and every group's options of a saved optimizer (positioned before the tensor states),
    /// validating each; changes nothing.
    /// </summary>
    private (StateDictionary sd, List<RuleOptions> options) ReadOptions(BinaryReader reader)
    {
        // A tagged checkpoint carries TorchSharp's layout after its header; a generic one starts with the type name.
        string name;
        try {
            name = Checkpoint.ReadHeader(reader, GetType().Name) ?? reader.ReadString();
        } catch (EndOfStreamException e) {
            throw new InvalidDataException("The optimizer state is empty or truncated.", e);
        }
        if (name != GetType().Name)
            throw new InvalidDataException($"The state was saved by a '{name}' optimizer; it cannot be loaded into a '{GetType().Name}'.");
        try {
            long groups = TensorIO.ReadLeb128(reader);
            long states = TensorIO.ReadLeb128(reader);
            var sd = state_dict();
            if (groups != sd.Options.Count)
                throw new InvalidDataException($"The saved optimizer has {groups} parameter groups but this one has {sd.Options.Count}.");
            if (states != sd.State.Count)
                throw new InvalidDataException($"The saved optimizer has {states} tensor states but this one has {sd.State.Count}.");
            return (sd, sd.Options.Select(o => ((RuleOptions)o).Read(reader)).ToList());
        } catch (EndOfStreamException e) {
            throw new InvalidDataException("The optimizer state ends early: the file is truncated.", e);
        }
    }

    /// <summary>
    /// The algorithm switches (<see cref="RuleOptions.IsAlgorithmSwitch"/>) on which <paramref name="saved"/> differs
    /// from this optimizer's groups, each prefixed with its group when there are several; empty when they agree.
    /// </summary>
    internal List<string> SwitchDifferences(IReadOnlyList<OptimizerOptions> saved)
    {
        var differences = new List<string>();
        for (int i = 0; i < saved.Count && i < _parameter_groups.Count; i++) {
            if (saved[i] is not RuleOptions s) continue;
            string prefix = _parameter_groups.Count > 1 ? $"group {i}: " : "";
            differences.AddRange(((RuleOptions)_parameter_groups[i].Options).SwitchDifferences(s).Select(d => prefix + d));
        }
        return differences;
    }

    /// <summary>
    /// The algorithm differences between a saved optimizer (header and options only; no tensor is read) and this one
    /// (used by a graft to name both children's differences before it stages either).
    /// </summary>
    List<string> IAlgorithmCheck.CheckpointSwitchDifferences(BinaryReader reader) => SwitchDifferences(ReadOptions(reader).options);

    List<string> IAlgorithmCheck.SwitchDifferences(IReadOnlyList<OptimizerOptions> saved) => SwitchDifferences(saved);

    /// <summary>
    /// Reads a saved optimizer completely and returns the action that applies it. The file's numeric hyperparameters
    /// replace this optimizer's; a file of another algorithm raises an <see cref="InvalidDataException"/>.
    /// </summary>
    internal Action Stage(BinaryReader reader)
    {
        var (sd, stagedOptions) = ReadOptions(reader);
        var differences = SwitchDifferences(stagedOptions);
        if (differences.Count > 0) throw RuleOptions.AlgorithmMismatch(GetType().Name, differences);
        try {
            var stagedStates = new List<(long, Tensor?[])>();
            try {
                foreach (var s in sd.State) stagedStates.Add(((RuleState)s).Read(reader));
            } catch {
                foreach (var (_, slots) in stagedStates) foreach (var t in slots) t?.Dispose();
                throw;
            }
            return () => {
                for (int i = 0; i < stagedOptions.Count; i++) sd.Options[i].LoadStateDict(stagedOptions[i]);
                for (int i = 0; i < stagedStates.Count; i++) ((RuleState)sd.State[i]).Commit(stagedStates[i].Item1, stagedStates[i].Item2);
            };
        } catch (EndOfStreamException e) {
            throw new InvalidDataException("The optimizer state ends early: the file is truncated.", e);
        }
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
