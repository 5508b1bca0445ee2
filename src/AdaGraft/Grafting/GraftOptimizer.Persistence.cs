using System;
using System.IO;
using System.Linq;
using AdaGraft.Optimizers;
using AdaGraft.Rules;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.optim;

namespace AdaGraft.Grafting;

/// <summary>State dicts and tagged checkpoints of the graft and both children (see IOptimizerCheckpoint).</summary>
public sealed partial class GraftOptimizer
{
    /// <summary>Both children's options (M's groups, then D's) and states (M's tensors, then D's).</summary>
    public override StateDictionary state_dict()
    {
        ThrowIfDisposed();
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

    /// <summary>Loads both children's options and states (validated by each child before it changes).</summary>
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
        ((OptimizerHelper)_magnitude).load_state_dict(sm);
        ((OptimizerHelper)_direction).load_state_dict(sdd);
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
            if (granularity != Options.Granularity || (granularity == GraftGranularity.PerBlock && block != Options.BlockSize) || eps != Options.Epsilon)
                throw new InvalidDataException($"The state was saved by a graft with granularity {granularity}, block {block}, ε {eps}; this one has {Options.Granularity}, {Options.BlockSize}, {Options.Epsilon}.");
            var mBytes = ReadChild(reader, _magnitude);
            var dBytes = ReadChild(reader, _direction);
            var point = (GraftPoint)reader.ReadInt32();
            if (point != Options.Point)
                throw new InvalidDataException($"The state was saved by a graft with point {point}; this one has {Options.Point}.");
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
            };
        } catch (EndOfStreamException e) {
            throw new InvalidDataException("The graft state ends early: the file is truncated.", e);
        }
    }

    /// <summary>Loads a file written by <see cref="save_state_dict(string)"/>.</summary>
    public new void load_state_dict(string location)
    {
        ThrowIfDisposed();
        using var stream = File.OpenRead(location);
        using var reader = new BinaryReader(stream);
        var commit = StageCheckpoint(reader);
        if (stream.Position != stream.Length)
            throw new InvalidDataException($"{location} has {stream.Length - stream.Position} bytes after the graft state: the file is corrupted.");
        commit();
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

    private static byte[] ReadChild(BinaryReader reader, Optimizer child)
    {
        string type = reader.ReadString();
        if (type != child.GetType().Name)
            throw new InvalidDataException($"The saved graft has a '{type}' child where this graft has a '{child.GetType().Name}'.");
        long length = reader.ReadInt64();
        if (length < 0 || length > int.MaxValue)
            throw new InvalidDataException("The saved graft is corrupted (child length).");
        var bytes = reader.ReadBytes((int)length);
        if (bytes.Length != length) throw new InvalidDataException("The graft state ends early: the file is truncated.");
        return bytes;
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
