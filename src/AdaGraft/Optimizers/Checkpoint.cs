namespace AdaGraft.Optimizers;

/// <summary>
/// Saving and loading an AdaGraft optimizer's complete state, implemented by every optimizer of the library (rule-based
/// optimizers and <see cref="Grafting.GraftOptimizer"/>). Callers that hold optimizers of several kinds (a graft saving
/// its children, a checkpoint helper) use this instead of switching on types.
/// </summary>
/// <remarks>
/// <para>A checkpoint starts with a tag, the .NET string <c>"AdaGraft checkpoint: {type}"</c>, and a format version
/// (<see cref="Checkpoint.FormatVersion"/>, an Int32), then the optimizer's own data. The <c>save_state_dict</c> and
/// <c>load_state_dict(BinaryReader/string)</c> members of the library's optimizers read and write this format.</para>
/// <para>TorchSharp's <c>OptimizerHelper.save_state_dict</c> and <c>load_state_dict(BinaryReader)</c> are not
/// virtual, so code that calls them through an <c>OptimizerHelper</c> reference runs TorchSharp's own code, which writes
/// TorchSharp's generic format (type name, counts, every group's options, every tensor's state). Loading is defined for
/// every combination: a rule-based optimizer loads either format through either reference; a graft loads its own
/// checkpoints through its own reference and generic ones through an <c>OptimizerHelper</c> reference, and each other
/// combination raises one <see cref="InvalidDataException"/> that names what the file holds (TorchSharp's own loader
/// reports the tag: "expected 'GraftOptimizer', but found 'AdaGraft checkpoint: GraftOptimizer'").</para>
/// </remarks>
public interface IOptimizerCheckpoint
{
    /// <summary>Writes the tagged checkpoint.</summary>
    void SaveCheckpoint(BinaryWriter writer);

    /// <summary>
    /// Reads and validates a checkpoint completely without changing anything, and returns the action that applies it.
    /// Throws <see cref="InvalidDataException"/> naming what the stream holds when it does not fit this optimizer.
    /// </summary>
    Action StageCheckpoint(BinaryReader reader);
}

/// <summary>The tag and version at the start of every AdaGraft checkpoint.</summary>
public static class Checkpoint
{
    /// <summary>The tag's prefix; the optimizer's type name follows it.</summary>
    public const string TagPrefix = "AdaGraft checkpoint: ";

    /// <summary>The format version this library writes and reads.</summary>
    public const int FormatVersion = 2;

    /// <summary>Writes the tag and version for an optimizer of type <paramref name="typeName"/>.</summary>
    internal static void WriteHeader(BinaryWriter writer, string typeName)
    {
        writer.Write(TagPrefix + typeName);
        writer.Write(FormatVersion);
    }

    /// <summary>
    /// Loads the checkpoint file at <paramref name="location"/>: <paramref name="stage"/> reads and validates all of it
    /// without changing anything; the change is applied only when the file ends there. Bytes left after it raise an
    /// <see cref="InvalidDataException"/> ("... bytes after <paramref name="what"/>").
    /// </summary>
    internal static void LoadFile(string location, Func<BinaryReader, Action> stage, string what)
    {
        using var stream = File.OpenRead(location);
        using var reader = new BinaryReader(stream);
        var commit = stage(reader);
        if (stream.Position != stream.Length)
            throw new InvalidDataException($"{location} has {stream.Length - stream.Position} bytes after {what}");
        commit();
    }

    /// <summary>
    /// Reads the start of a checkpoint meant for an optimizer of type <paramref name="expected"/>. Returns null for an
    /// AdaGraft checkpoint of that type (positioned after the version), or the type name that starts TorchSharp's
    /// generic format (positioned after it); throws <see cref="InvalidDataException"/> for an AdaGraft checkpoint of
    /// another type or version, or an empty stream.
    /// </summary>
    internal static string? ReadHeader(BinaryReader reader, string expected)
    {
        string first;
        try {
            first = reader.ReadString();
        } catch (EndOfStreamException e) {
            throw new InvalidDataException("The optimizer state is empty or truncated.", e);
        }
        if (!first.StartsWith(TagPrefix, StringComparison.Ordinal)) return first;
        string type = first[TagPrefix.Length..];
        int version;
        try {
            version = reader.ReadInt32();
        } catch (EndOfStreamException e) {
            throw new InvalidDataException("The optimizer state ends early: the file is truncated.", e);
        }
        if (version != FormatVersion)
            throw new InvalidDataException(version > FormatVersion && version < 1000
                ? $"The file holds a {type} checkpoint of format version {version}, written by a newer AdaGraft; this version reads format {FormatVersion}."
                : $"The file holds a {type} checkpoint with an invalid format version ({version}): the file is corrupted.");
        if (type != expected)
            throw new InvalidDataException($"The file holds a {type} checkpoint; it cannot be loaded into a {expected}. Load it into a {type} built over the same parameters.");
        return null;
    }
}
