using AdaGraft.Optimizers;
using static TorchSharp.torch.optim;

namespace AdaGraft.Grafting;

/// <summary>State dicts and tagged checkpoints of the graft and both children (see IOptimizerCheckpoint).</summary>
public sealed partial class GraftOptimizer
{
    /// <summary>
    /// Both children's options (M's groups, then D's) and states (M's tensors, then D's). D's betas are first brought up
    /// to date with what a scheduler set on M (see <see cref="GraftOptimizer"/>'s remarks).
    /// </summary>
    public override StateDictionary state_dict()
    {
        ThrowIfDisposed();
        FollowMagnitudeMoments();
        var m = ChildStateDict(_magnitude);
        var d = ChildStateDict(_direction);
        var sd = EmptyStateDictionary();
        sd.Options.AddRange(m.Options);
        sd.Options.AddRange(d.Options);
        sd.State.AddRange(m.State);
        sd.State.AddRange(d.State);
        int offset = m.State.Count;
        sd.StateIndexRef.AddRange(m.StateIndexRef);
        sd.StateIndexRef.AddRange(d.StateIndexRef.Select(r => r.Select(x => x + offset).ToList()));
        return sd;
    }

    private static StateDictionary EmptyStateDictionary() =>
        (StateDictionary)Activator.CreateInstance(typeof(StateDictionary), nonPublic: true)!;

    private static StateDictionary ChildStateDict(Optimizer child) =>
        child is OptimizerHelper h ? h.state_dict()
        : throw new NotSupportedException($"{child.GetType().Name} has no managed state dict; grafting can save only OptimizerHelper children.");

    /// <summary>
    /// Loads both children's options and states (validated by each child before it changes). Numeric hyperparameters
    /// come from <paramref name="state_dict"/>; children of another algorithm (convention switches) raise an
    /// <see cref="InvalidDataException"/> naming each difference, before either child changes.
    /// </summary>
    public override void load_state_dict(StateDictionary state_dict)
    {
        ThrowIfDisposed();
        ArgumentNullException.ThrowIfNull(state_dict);
        var m = ChildStateDict(_magnitude);
        var d = ChildStateDict(_direction);
        if (state_dict.Options.Count != m.Options.Count + d.Options.Count || state_dict.State.Count != m.State.Count + d.State.Count)
            throw new ArgumentException("The state dict does not hold the two children's groups and states of this graft.", nameof(state_dict));
        var sm = EmptyStateDictionary();
        var sdd = EmptyStateDictionary();
        sm.Options.AddRange(state_dict.Options.Take(m.Options.Count));
        sdd.Options.AddRange(state_dict.Options.Skip(m.Options.Count));
        sm.State.AddRange(state_dict.State.Take(m.State.Count));
        sdd.State.AddRange(state_dict.State.Skip(m.State.Count));
        var differences = new List<string>();
        if (_magnitude is IAlgorithmCheck mCheck) differences.AddRange(mCheck.SwitchDifferences(sm.Options).Select(d => "M (magnitude): " + d));
        if (_direction is IAlgorithmCheck dCheck) differences.AddRange(dCheck.SwitchDifferences(sdd.Options).Select(d => "D (direction): " + d));
        if (differences.Count > 0) throw RuleOptions.AlgorithmMismatch(nameof(GraftOptimizer), differences);
        ((OptimizerHelper)_magnitude).load_state_dict(sm);
        ((OptimizerHelper)_direction).load_state_dict(sdd);
        SeeMoments();
    }

    /// <summary>
    /// Writes the graft as a tagged checkpoint (see <see cref="IOptimizerCheckpoint"/>): its settings, both children's
    /// checkpoints (each under its own type name) and the graft's own momentum.
    /// </summary>
    public new void save_state_dict(BinaryWriter writer) => SaveCheckpoint(writer);

    /// <inheritdoc />
    public void SaveCheckpoint(BinaryWriter writer)
    {
        ThrowIfDisposed();
        ArgumentNullException.ThrowIfNull(writer);
        FollowMagnitudeMoments();
        Checkpoint.WriteHeader(writer, nameof(GraftOptimizer));
        writer.Write((int)Options.Granularity);
        writer.Write(Options.BlockSize);
        writer.Write(Options.Epsilon);
        SaveChild(writer, _magnitude);
        SaveChild(writer, _direction);
        writer.Write((int)Options.Point);
        writer.Write(_momentum.Length);
        foreach (var t in _momentum) TensorIO.WriteOptional(writer, t);
    }

    /// <summary>
    /// Saves atomically to <paramref name="location"/> (temporary file, then rename), and deletes the temporary files
    /// of <paramref name="location"/> left by writers that were killed and no longer run.
    /// </summary>
    public new void save_state_dict(string location)
    {
        ThrowIfDisposed();
        AtomicFile.Write(location, save_state_dict);
    }

    /// <summary>
    /// Loads what <see cref="save_state_dict(BinaryWriter)"/> wrote. With rule-based children everything is read and
    /// validated before anything changes; built-in children are loaded by their own (per-item validated) code.
    /// </summary>
    /// <remarks>
    /// As PyTorch's <c>load_state_dict</c> does, the children's numeric hyperparameters (learning rates, betas, ε, weight
    /// decay) come from the file. The algorithm must be this graft's: a file whose granularity (or block size, ε, graft
    /// point), whose children's types, or whose rule-based children's convention switches differ (an SGD#Adam
    /// checkpoint loaded into an SGD#AdaGrad graft) raises an <see cref="InvalidDataException"/> that names every
    /// difference, before anything changes. Built-in (TorchSharp) children are compared by type.
    /// </remarks>
    public new void load_state_dict(BinaryReader reader) => StageCheckpoint(reader)();

    /// <inheritdoc />
    public Action StageCheckpoint(BinaryReader reader)
    {
        ThrowIfDisposed();
        ArgumentNullException.ThrowIfNull(reader);
        string? generic = Checkpoint.ReadHeader(reader, nameof(GraftOptimizer));
        if (generic == nameof(GraftOptimizer))
            throw new InvalidDataException(
                "The file holds TorchSharp's generic optimizer format for a GraftOptimizer (what OptimizerHelper.save_state_dict writes "
                + "when called through a base-class reference): the children's options and states, without the graft's own settings "
                + "and momentum. Load it through an OptimizerHelper reference, or save through the GraftOptimizer reference.");
        if (generic is not null)
            throw new InvalidDataException($"The state was saved by a '{generic}' optimizer; it cannot be loaded into a GraftOptimizer.");
        try {
            var granularity = (GraftGranularity)reader.ReadInt32();
            long block = reader.ReadInt64();
            double eps = reader.ReadDouble();
            var differences = new List<string>();
            if (granularity != Options.Granularity)
                differences.Add($"granularity: {granularity} in the file, {Options.Granularity} here");
            else if (granularity == GraftGranularity.PerBlock && block != Options.BlockSize)
                differences.Add($"block size: {block} in the file, {Options.BlockSize} here");
            if (eps != Options.Epsilon)
                differences.Add($"graft ε: {eps} in the file, {Options.Epsilon} here");
            var (mType, mBytes) = ReadChild(reader);
            var (dType, dBytes) = ReadChild(reader);
            var point = (GraftPoint)reader.ReadInt32();
            if (point != Options.Point)
                differences.Add($"graft point: {point} in the file, {Options.Point} here");
            differences.AddRange(ChildDifferences("M (magnitude)", _magnitude, mType, mBytes));
            differences.AddRange(ChildDifferences("D (direction)", _direction, dType, dBytes));
            if (differences.Count > 0) throw RuleOptions.AlgorithmMismatch(nameof(GraftOptimizer), differences);
            int count = reader.ReadInt32();
            if (count != _params.Length)
                throw new InvalidDataException($"The saved graft has {count} momentum slots but this graft has {_params.Length} parameters.");
            var momentum = new Tensor?[count];
            try {
                for (int i = 0; i < count; i++)
                    momentum[i] = TensorIO.ReadOptional(reader, _params[i].shape, _params[i].dtype, _params[i].device, $"graft momentum of parameter {i}");
            } catch {
                foreach (var t in momentum) t?.Dispose();
                throw;
            }
            Action commitM, commitD;
            try {
                commitM = StageChild(_magnitude, mBytes);
                commitD = StageChild(_direction, dBytes);
            } catch {
                foreach (var t in momentum) t?.Dispose();
                throw;
            }
            return () => {
                // Rule-based children were fully validated by staging; built-ins validate while they load, so keep a copy
                // of both children to roll back to if the second one fails after the first has changed.
                byte[]? backupM = null, backupD = null;
                if (_magnitude is not IOptimizerCheckpoint || _direction is not IOptimizerCheckpoint) {
                    backupM = ChildBytes(_magnitude);
                    backupD = ChildBytes(_direction);
                }
                try {
                    commitM();
                    commitD();
                } catch (Exception e) when (backupM is not null && e is not OutOfMemoryException) {
                    StageChild(_magnitude, backupM)();
                    StageChild(_direction, backupD!)();
                    foreach (var t in momentum) t?.Dispose();
                    throw new InvalidDataException($"A child's saved state is invalid ({e.Message}); both children were restored.", e);
                }
                for (int i = 0; i < count; i++) {
                    _momentum[i]?.Dispose();
                    _momentum[i] = momentum[i];
                }
                SeeMoments();
            };
        } catch (EndOfStreamException e) {
            throw new InvalidDataException("The graft state ends early: the file is truncated.", e);
        }
    }

    /// <summary>Loads a file written by <see cref="save_state_dict(string)"/>.</summary>
    public new void load_state_dict(string location)
    {
        ThrowIfDisposed();
        Checkpoint.LoadFile(location, StageCheckpoint, "the graft state: the file is corrupted.");
    }

    private static void SaveChild(BinaryWriter writer, Optimizer child)
    {
        var bytes = ChildBytes(child);
        writer.Write(child.GetType().Name);
        writer.Write((long)bytes.Length);
        writer.Write(bytes);
    }

    /// <summary>A child's own checkpoint (AdaGraft's optimizers), or TorchSharp's format for built-ins.</summary>
    private static byte[] ChildBytes(Optimizer child)
    {
        using var ms = new MemoryStream();
        using (var w = new BinaryWriter(ms, System.Text.Encoding.UTF8, leaveOpen: true)) {
            if (child is IOptimizerCheckpoint own) own.SaveCheckpoint(w);
            else if (child is OptimizerHelper helper) helper.save_state_dict(w);
            else throw new NotSupportedException($"{child.GetType().Name} has no managed state dict; grafting can save only OptimizerHelper children.");
        }
        return ms.ToArray();
    }

    private static (string Type, byte[] Bytes) ReadChild(BinaryReader reader)
    {
        string type = reader.ReadString();
        long length = reader.ReadInt64();
        var stream = reader.BaseStream;
        if (length < 0 || length > int.MaxValue || (stream.CanSeek && length > stream.Length - stream.Position))
            throw new InvalidDataException("The saved graft is corrupted or truncated (child length).");
        var bytes = reader.ReadBytes((int)length);
        if (bytes.Length != length) throw new InvalidDataException("The graft state ends early: the file is truncated.");
        return (type, bytes);
    }

    /// <summary>
    /// How a saved child differs in algorithm from <paramref name="child"/>: its type, or (rule-based children) the
    /// convention switches of its groups, read from its options without staging any tensor.
    /// </summary>
    private static IEnumerable<string> ChildDifferences(string role, Optimizer child, string savedType, byte[] bytes)
    {
        if (savedType != child.GetType().Name)
            return new[] { $"{role}: a {savedType} in the file, a {child.GetType().Name} here" };
        if (child is not IAlgorithmCheck check) return Array.Empty<string>();
        using var reader = new BinaryReader(new MemoryStream(bytes, writable: false));
        return check.CheckpointSwitchDifferences(reader).Select(d => $"{role}: {d}").ToList();
    }

    private static Action StageChild(Optimizer child, byte[] bytes)
    {
        var stream = new MemoryStream(bytes);
        var reader = new BinaryReader(stream);
        string what = $"The saved {child.GetType().Name} section";
        if (child is IOptimizerCheckpoint staged) {
            var commit = staged.StageCheckpoint(reader);
            if (stream.Position != stream.Length)
                throw new InvalidDataException($"{what} has {stream.Length - stream.Position} unread bytes: the file is corrupted.");
            return commit;
        }
        return () => {
            ((OptimizerHelper)child).load_state_dict(reader);
            if (stream.Position != stream.Length)
                throw new InvalidDataException($"{what} has {stream.Length - stream.Position} unread bytes: the file is corrupted.");
        };
    }
}
