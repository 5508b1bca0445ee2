namespace AdaGraft.Optimizers;

/// <summary>Persistence of a rule optimizer: checkpoints, state dictionaries, staged loads and moves between devices.</summary>
public abstract partial class RuleOptimizer<TOptions, TState>
{
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
        Checkpoint.LoadFile(location, Stage, "the optimizer state: the file is corrupted or was written by another optimizer.");
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

    void ILoadStager.Stage(RuleState target, long step, Tensor?[] slots, double[] host)
    {
        _pendingTensors.Add(slots);
        _pendingLoad.Add(() => target.Commit(step, slots, host));
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
            var stagedStates = new List<(long step, Tensor?[] slots, double[] host)>();
            try {
                foreach (var s in sd.State) stagedStates.Add(((RuleState)s).Read(reader));
            } catch {
                foreach (var (_, slots, _) in stagedStates) foreach (var t in slots) t?.Dispose();
                throw;
            }
            return () => {
                for (int i = 0; i < stagedOptions.Count; i++) sd.Options[i].LoadStateDict(stagedOptions[i]);
                for (int i = 0; i < stagedStates.Count; i++) ((RuleState)sd.State[i]).Commit(stagedStates[i].step, stagedStates[i].slots, stagedStates[i].host);
            };
        } catch (EndOfStreamException e) {
            throw new InvalidDataException("The optimizer state ends early: the file is truncated.", e);
        }
    }
}
