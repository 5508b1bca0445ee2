using System;
using System.Buffers.Binary;
using System.IO;
using System.IO.Compression;
using System.Linq;

namespace AdaGraft.Lab.Data;

#pragma warning disable CA1720 // The IDX element types are named after the types they hold.
/// <summary>The element types of the IDX format (third byte of the magic number).</summary>
public enum IdxDataType : byte
{
    /// <summary>Unsigned byte (0x08).</summary>
    UInt8 = 0x08,

    /// <summary>Signed byte (0x09).</summary>
    Int8 = 0x09,

    /// <summary>Big-endian 16-bit integer (0x0B).</summary>
    Int16 = 0x0B,

    /// <summary>Big-endian 32-bit integer (0x0C).</summary>
    Int32 = 0x0C,

    /// <summary>Big-endian IEEE 754 single (0x0D).</summary>
    Float32 = 0x0D,

    /// <summary>Big-endian IEEE 754 double (0x0E).</summary>
    Float64 = 0x0E,
}
#pragma warning restore CA1720

/// <summary>
/// An n-dimensional array read from or written to an IDX file (the format of MNIST and Fashion-MNIST):
/// magic number <c>00 00 TT NN</c> (TT the element type, NN the number of dimensions), NN big-endian 32-bit sizes,
/// then the elements in row-major order, big-endian.
/// </summary>
public sealed class IdxArray
{
    /// <summary>Wraps <paramref name="values"/> (an array of the element type) with its dimensions.</summary>
    public IdxArray(IdxDataType dataType, int[] dimensions, Array values)
    {
        ArgumentNullException.ThrowIfNull(dimensions);
        ArgumentNullException.ThrowIfNull(values);
        if (!Enum.IsDefined(dataType))
            throw new ArgumentOutOfRangeException(nameof(dataType), dataType, "Unknown IDX element type.");
        if (dimensions.Length is 0 or > 255)
            throw new ArgumentException($"An IDX array has 1 to 255 dimensions, not {dimensions.Length}.", nameof(dimensions));
        if (dimensions.Any(d => d < 0))
            throw new ArgumentException("IDX dimensions cannot be negative.", nameof(dimensions));
        if (values.GetType() != ClrType(dataType).MakeArrayType())
            throw new ArgumentException($"Values of an IDX {dataType} array must be {ClrType(dataType).Name}[], not {values.GetType().Name}.", nameof(values));
        long count = dimensions.Aggregate(1L, (a, d) => a * d);
        if (values.Length != count)
            throw new ArgumentException($"Dimensions [{string.Join(", ", dimensions)}] hold {count} elements but {values.Length} values were given.", nameof(values));
        DataType = dataType;
        Dimensions = dimensions;
        Values = values;
    }

    /// <summary>The element type.</summary>
    public IdxDataType DataType { get; }

    /// <summary>The sizes, outermost first.</summary>
    public int[] Dimensions { get; }

    /// <summary>The elements: byte[], sbyte[], short[], int[], float[] or double[] according to <see cref="DataType"/>.</summary>
    public Array Values { get; }

    /// <summary>The number of elements.</summary>
    public long Count => Values.Length;

    /// <summary>The elements as bytes (only for <see cref="IdxDataType.UInt8"/>).</summary>
    public byte[] AsBytes() => Values as byte[]
        ?? throw new InvalidDataException($"Expected an IDX array of unsigned bytes (0x08), found {DataType} (0x{(byte)DataType:X2}).");

    /// <summary>The size in bytes of one element.</summary>
    public static int ElementSize(IdxDataType t) => t switch {
        IdxDataType.UInt8 or IdxDataType.Int8 => 1,
        IdxDataType.Int16 => 2,
        IdxDataType.Int32 or IdxDataType.Float32 => 4,
        IdxDataType.Float64 => 8,
        _ => throw new ArgumentOutOfRangeException(nameof(t), t, "Unknown IDX element type."),
    };

    internal static Type ClrType(IdxDataType t) => t switch {
        IdxDataType.UInt8 => typeof(byte),
        IdxDataType.Int8 => typeof(sbyte),
        IdxDataType.Int16 => typeof(short),
        IdxDataType.Int32 => typeof(int),
        IdxDataType.Float32 => typeof(float),
        IdxDataType.Float64 => typeof(double),
        _ => throw new ArgumentOutOfRangeException(nameof(t), t, "Unknown IDX element type."),
    };
}

/// <summary>Reads IDX files, gzip-compressed (detected by content, not by name) or raw, with validation.</summary>
public static class IdxReader
{
    /// <summary>At most this many elements are accepted (guards against absurd headers): 2^31 − 1.</summary>
    public const long MaxElements = int.MaxValue;

    /// <summary>Reads the IDX file at <paramref name="path"/>.</summary>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="InvalidDataException">The file is not a valid IDX file (the message says why and names the file).</exception>
    public static IdxArray Read(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (!File.Exists(path))
            throw new FileNotFoundException($"IDX file not found: {path}", path);
        using var stream = File.OpenRead(path);
        return Read(stream, path);
    }

    /// <summary>Reads an IDX array from <paramref name="stream"/>; <paramref name="sourceName"/> names it in errors.</summary>
    public static IdxArray Read(Stream stream, string sourceName = "stream")
    {
        ArgumentNullException.ThrowIfNull(stream);
        // Buffer the (possibly compressed) content: IDX files of interest are at most a few tens of MB.
        byte[] raw;
        using (var ms = new MemoryStream()) {
            stream.CopyTo(ms);
            raw = ms.ToArray();
        }
        bool gzip = raw.Length >= 2 && raw[0] == 0x1F && raw[1] == 0x8B;
        byte[] content = raw;
        if (gzip) {
            try {
                using var gz = new GZipStream(new MemoryStream(raw), CompressionMode.Decompress);
                using var ms = new MemoryStream();
                gz.CopyTo(ms);
                content = ms.ToArray();
            } catch (InvalidDataException e) {
                throw new InvalidDataException($"{sourceName}: the gzip stream is corrupt or truncated ({e.Message}).", e);
            } catch (EndOfStreamException e) {
                throw new InvalidDataException($"{sourceName}: the gzip stream is truncated ({e.Message}).", e);
            }
        }
        return Parse(content, sourceName + (gzip ? " (gzip)" : ""));
    }

    /// <summary>Parses uncompressed IDX bytes.</summary>
    public static IdxArray Parse(ReadOnlySpan<byte> content, string sourceName = "buffer")
    {
        if (content.Length < 4)
            throw new InvalidDataException($"{sourceName}: truncated IDX header: the file has {content.Length} bytes, fewer than the 4 of the magic number.");
        if (content[0] != 0 || content[1] != 0)
            throw new InvalidDataException($"{sourceName}: not an IDX file: magic number 0x{content[0]:X2}{content[1]:X2}{content[2]:X2}{content[3]:X2} does not start with two zero bytes (expected 0x0000TTNN, e.g. 0x00000803 for unsigned-byte images).");
        var type = (IdxDataType)content[2];
        if (!Enum.IsDefined(type))
            throw new InvalidDataException($"{sourceName}: unknown IDX element type 0x{content[2]:X2} in magic number (expected 0x08, 0x09, 0x0B, 0x0C, 0x0D or 0x0E).");
        int ndims = content[3];
        if (ndims == 0)
            throw new InvalidDataException($"{sourceName}: the IDX magic number declares 0 dimensions.");
        int headerLength = 4 + 4 * ndims;
        if (content.Length < headerLength)
            throw new InvalidDataException($"{sourceName}: truncated IDX header: {ndims} dimensions need {headerLength} header bytes, the file has {content.Length}.");
        var dims = new int[ndims];
        long count = 1;
        for (int i = 0; i < ndims; i++) {
            uint d = BinaryPrimitives.ReadUInt32BigEndian(content.Slice(4 + 4 * i, 4));
            if (d > int.MaxValue)
                throw new InvalidDataException($"{sourceName}: dimension {i} has an impossible size {d}.");
            dims[i] = (int)d;
            count *= d;
            if (count > MaxElements)
                throw new InvalidDataException($"{sourceName}: dimensions [{string.Join(", ", dims.Take(i + 1))}…] exceed {MaxElements} elements.");
        }
        int size = IdxArray.ElementSize(type);
        long expected = count * size;
        long available = content.Length - headerLength;
        if (available < expected)
            throw new InvalidDataException($"{sourceName}: truncated IDX data: dimensions [{string.Join(", ", dims)}] of {type} need {expected} bytes after the {headerLength}-byte header, but only {available} are present.");
        if (available > expected)
            throw new InvalidDataException($"{sourceName}: {available - expected} unexpected bytes after the IDX data (dimensions [{string.Join(", ", dims)}] of {type} need exactly {expected}).");

        var data = content.Slice(headerLength);
        int n = (int)count;
        Array values = type switch {
            IdxDataType.UInt8 => data.ToArray(),
            IdxDataType.Int8 => Decode(data, n, 1, b => unchecked((sbyte)b[0])),
            IdxDataType.Int16 => Decode(data, n, 2, BinaryPrimitives.ReadInt16BigEndian),
            IdxDataType.Int32 => Decode(data, n, 4, BinaryPrimitives.ReadInt32BigEndian),
            IdxDataType.Float32 => Decode(data, n, 4, BinaryPrimitives.ReadSingleBigEndian),
            _ => Decode(data, n, 8, BinaryPrimitives.ReadDoubleBigEndian),
        };
        return new IdxArray(type, dims, values);
    }

    private delegate T ElementReader<T>(ReadOnlySpan<byte> bytes);

    /// <summary>The <paramref name="n"/> elements of <paramref name="size"/> bytes each at the start of <paramref name="data"/>, each read by <paramref name="read"/>.</summary>
    private static T[] Decode<T>(ReadOnlySpan<byte> data, int n, int size, ElementReader<T> read)
    {
        var v = new T[n];
        for (int i = 0; i < n; i++) v[i] = read(data.Slice(size * i, size));
        return v;
    }
}

/// <summary>Writes IDX files (gzip-compressed when the name ends in .gz).</summary>
public static class IdxWriter
{
    /// <summary>Writes <paramref name="array"/> to <paramref name="path"/>; compressed when the path ends in ".gz".</summary>
    public static void Write(string path, IdxArray array)
    {
        ArgumentNullException.ThrowIfNull(path);
        ArgumentNullException.ThrowIfNull(array);
        var bytes = ToBytes(array);
        var dir = Path.GetDirectoryName(Path.GetFullPath(path));
        if (!string.IsNullOrEmpty(dir)) Directory.CreateDirectory(dir);
        using var file = File.Create(path);
        if (path.EndsWith(".gz", StringComparison.OrdinalIgnoreCase)) {
            using var gz = new GZipStream(file, CompressionLevel.SmallestSize);
            gz.Write(bytes);
        } else {
            file.Write(bytes);
        }
    }

    /// <summary>The uncompressed IDX encoding of <paramref name="array"/>.</summary>
    public static byte[] ToBytes(IdxArray array)
    {
        ArgumentNullException.ThrowIfNull(array);
        int size = IdxArray.ElementSize(array.DataType);
        int header = 4 + 4 * array.Dimensions.Length;
        var buf = new byte[header + array.Count * size];
        buf[2] = (byte)array.DataType;
        buf[3] = (byte)array.Dimensions.Length;
        for (int i = 0; i < array.Dimensions.Length; i++)
            BinaryPrimitives.WriteInt32BigEndian(buf.AsSpan(4 + 4 * i, 4), array.Dimensions[i]);
        var data = buf.AsSpan(header);
        switch (array.Values) {
            case byte[] v: v.CopyTo(data); break;
            case sbyte[] v: for (int i = 0; i < v.Length; i++) data[i] = unchecked((byte)v[i]); break;
            case short[] v: for (int i = 0; i < v.Length; i++) BinaryPrimitives.WriteInt16BigEndian(data.Slice(2 * i, 2), v[i]); break;
            case int[] v: for (int i = 0; i < v.Length; i++) BinaryPrimitives.WriteInt32BigEndian(data.Slice(4 * i, 4), v[i]); break;
            case float[] v: for (int i = 0; i < v.Length; i++) BinaryPrimitives.WriteSingleBigEndian(data.Slice(4 * i, 4), v[i]); break;
            case double[] v: for (int i = 0; i < v.Length; i++) BinaryPrimitives.WriteDoubleBigEndian(data.Slice(8 * i, 8), v[i]); break;
            default: throw new ArgumentException("Unsupported IDX value array.", nameof(array));
        }
        return buf;
    }
}
