namespace AdaGraft.Rules;

/// <summary>
/// Tensor (de)serialisation for optimizer state: a header (dtype, rank, shape) that is validated against what
/// the parameter needs before any data is read, so a file of other shapes, types, or a truncated file is
/// rejected with a clear message and without touching existing state.
/// </summary>
internal static class TensorIO
{
    private const int MaxRank = 64;

    public static void WriteOptional(BinaryWriter writer, Tensor? t)
    {
        writer.Write(t is not null);
        if (t is null) return;
        writer.Write((int)t.dtype);
        writer.Write(t.shape.Length);
        foreach (var d in t.shape) writer.Write(d);
        writer.Flush();
        if (t.device_type == DeviceType.CPU) {
            t.WriteBytesToStream(writer.BaseStream, 1 << 16);
        } else {
            using var cpu = t.cpu();
            cpu.WriteBytesToStream(writer.BaseStream, 1 << 16);
        }
    }

    public static Tensor? ReadOptional(BinaryReader reader, long[] expectedShape, ScalarType expectedType, Device device, string what)
    {
        if (!reader.ReadBoolean()) return null;
        var type = (ScalarType)reader.ReadInt32();
        if (type != expectedType)
            throw new InvalidDataException($"The saved {what} has dtype {type} but the parameter is {expectedType}: load into an optimizer over parameters of the same dtype.");
        int rank = reader.ReadInt32();
        if (rank < 0 || rank > MaxRank)
            throw new InvalidDataException($"The saved {what} claims rank {rank}: the file is corrupted.");
        var shape = new long[rank];
        for (int i = 0; i < rank; i++) {
            shape[i] = reader.ReadInt64();
            if (shape[i] < 0) throw new InvalidDataException($"The saved {what} has a negative dimension: the file is corrupted.");
        }
        if (!shape.SequenceEqual(expectedShape))
            throw new InvalidDataException($"The saved {what} has shape [{string.Join(", ", shape)}] but the parameter needs [{string.Join(", ", expectedShape)}]: load into an optimizer over the same model.");
        var stream = reader.BaseStream;
        long bytes = shape.Aggregate(1L, (a, b) => a * b) * ElementSize(type);
        if (stream.CanSeek && stream.Length - stream.Position < bytes)
            throw new InvalidDataException($"The saved {what} needs {bytes} bytes but only {stream.Length - stream.Position} remain: the file is truncated.");
        var cpu = torch.empty(shape, type);
        try {
            cpu.ReadBytesFromStream(stream, 1 << 16);
            if (device.type == DeviceType.CPU) return cpu.DetachFromDisposeScope();
            var moved = cpu.to(device).DetachFromDisposeScope();
            cpu.Dispose();
            return moved;
        } catch (EndOfStreamException e) {
            cpu.Dispose();
            throw new InvalidDataException($"The saved {what} ends early: the file is truncated.", e);
        }
    }

    /// <summary>Reads an unsigned LEB128 integer (TorchSharp's count encoding in optimizer files).</summary>
    public static long ReadLeb128(BinaryReader reader)
    {
        long result = 0;
        for (int shift = 0; shift < 63; shift += 7) {
            byte b = reader.ReadByte();
            result |= (long)(b & 0x7f) << shift;
            if ((b & 0x80) == 0) return result;
        }
        throw new InvalidDataException("A count in the optimizer file is malformed: the file is corrupted.");
    }

    private static long ElementSize(ScalarType t) => t switch {
        ScalarType.Float64 or ScalarType.Int64 or ScalarType.ComplexFloat32 => 8,
        ScalarType.Float32 or ScalarType.Int32 => 4,
        ScalarType.Float16 or ScalarType.BFloat16 or ScalarType.Int16 => 2,
        ScalarType.ComplexFloat64 => 16,
        _ => 1,
    };
}
