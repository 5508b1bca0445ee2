namespace AdaGraft.Tests.Support;

/// <summary>
/// A checkpoint written to and read from memory. The caller passes the optimizer's own method
/// (<c>opt.save_state_dict</c>, <c>opt.load_state_dict</c>), so the overload its static type declares is the one
/// that runs (TorchSharp's <c>OptimizerHelper</c> overloads are not virtual).
/// </summary>
public static class StateBytes
{
    /// <summary>The bytes <paramref name="save"/> writes.</summary>
    public static byte[] Save(Action<BinaryWriter> save)
    {
        using var stream = new MemoryStream();
        using (var writer = new BinaryWriter(stream, System.Text.Encoding.UTF8, leaveOpen: true)) save(writer);
        return stream.ToArray();
    }

    /// <summary>Lets <paramref name="load"/> read <paramref name="bytes"/> (a read-only stream).</summary>
    public static void Load(byte[] bytes, Action<BinaryReader> load)
    {
        using var stream = new MemoryStream(bytes, writable: false);
        using var reader = new BinaryReader(stream);
        load(reader);
    }

    /// <summary>
    /// Loads <paramref name="bytes"/> through <paramref name="load"/>, which must raise one
    /// <see cref="InvalidDataException"/> and leave the checkpoint <paramref name="save"/> writes as it was; returns the
    /// exception's message.
    /// </summary>
    public static string RefusedMessage(byte[] bytes, Action<BinaryReader> load, Action<BinaryWriter> save)
    {
        var before = Save(save);
        var message = FluentActions.Invoking(() => Load(bytes, load)).Should().Throw<InvalidDataException>().Which.Message;
        Save(save).Should().Equal(before, "a refused load changes nothing");
        return message;
    }
}
