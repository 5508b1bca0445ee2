using System.Text;

namespace AdaGraft.Tests.Hardening;

/// <summary>One structural field of a saved state and a corruption of it that changes its value.</summary>
internal sealed record CorruptibleField(string Name, int Offset, Func<byte, byte> Corrupt)
{
    public byte[] ApplyTo(byte[] bytes, int baseOffset = 0)
    {
        var copy = (byte[])bytes.Clone();
        copy[baseOffset + Offset] = Corrupt(copy[baseOffset + Offset]);
        copy[baseOffset + Offset].Should().NotBe(bytes[baseOffset + Offset], $"the corruption of {Name} must change a byte");
        return copy;
    }
}

/// <summary>
/// Walks the bytes AdaGraft writes and lists the offsets of their structural fields (type names, counts, dtype codes,
/// ranks, dimensions, slot names, presence flags, lengths), with a corruption of each that changes its value. Data
/// fields (hyperparameter values, tensor contents) are not listed: a changed number is a valid file.
/// </summary>
internal static class StateFileLayout
{
    private static byte FlipCase(byte b) => (byte)(b ^ 0x20);

    private static byte FlipLowBit(byte b) => (byte)(b ^ 0x01);

    /// <summary>The fields of a <c>RuleOptimizer</c>'s state (what <c>save_state_dict(BinaryWriter)</c> writes).</summary>
    public static List<CorruptibleField> OfOptimizer(byte[] bytes, int start = 0, int length = -1, string prefix = "")
    {
        var fields = new List<CorruptibleField>();
        using var reader = new BinaryReader(new MemoryStream(bytes, start, length < 0 ? bytes.Length - start : length));
        int Pos() => (int)reader.BaseStream.Position;
        void Add(string name, int offset, Func<byte, byte> corrupt) => fields.Add(new CorruptibleField(prefix + name, offset, corrupt));

        Header(reader, prefix, fields);
        int nameStart = Pos();
        string type = reader.ReadString();
        Add("type name length", nameStart, FlipLowBit);
        Add("type name", Pos() - Encoding.UTF8.GetByteCount(type), FlipCase);
        int groupsAt = Pos();
        long groups = Leb128(reader);
        Add("group count", groupsAt, b => (byte)(b ^ 0x02));
        int statesAt = Pos();
        long states = Leb128(reader);
        Add("state count", statesAt, FlipLowBit);
        for (int g = 0; g < groups; g++) {
            reader.ReadDouble();
            reader.ReadDouble();
            Add($"group {g}: hyperparameter count", Pos(), FlipLowBit);
            int count = reader.ReadInt32();
            for (int h = 0; h < count; h++) {
                int before = Pos();
                reader.ReadString();
                Add($"group {g}: hyperparameter {h} name", before + 1, FlipCase);
                reader.ReadDouble();
            }
        }
        for (int s = 0; s < states; s++) {
            Add($"state {s}: dtype code", Pos(), FlipLowBit);
            Add($"state {s}: dtype code out of range", Pos(), _ => 0x7f);
            reader.ReadInt32();
            Add($"state {s}: rank", Pos(), FlipLowBit);
            int rank = reader.ReadInt32();
            for (int k = 0; k < rank; k++) {
                Add($"state {s}: dimension {k}", Pos(), FlipLowBit);
                reader.ReadInt64();
            }
            Add($"state {s}: step count sign", Pos() + 7, _ => 0x80);
            reader.ReadInt64();
            Add($"state {s}: slot count", Pos(), FlipLowBit);
            int slots = reader.ReadInt32();
            for (int j = 0; j < slots; j++) {
                int before = Pos();
                string slot = reader.ReadString();
                Add($"state {s}: slot '{slot}' name", before + 1, FlipCase);
                Add($"state {s}: slot '{slot}' presence flag", Pos(), FlipLowBit);
                if (!reader.ReadBoolean()) continue;
                Add($"state {s}: slot '{slot}' dtype code", Pos(), FlipLowBit);
                int dtype = reader.ReadInt32();
                Add($"state {s}: slot '{slot}' rank", Pos(), FlipLowBit);
                int slotRank = reader.ReadInt32();
                long elements = 1;
                for (int k = 0; k < slotRank; k++) {
                    Add($"state {s}: slot '{slot}' dimension {k}", Pos(), FlipLowBit);
                    elements *= reader.ReadInt64();
                }
                reader.ReadBytes(checked((int)(elements * ElementSize(dtype))));
            }
        }
        reader.BaseStream.Position.Should().Be(reader.BaseStream.Length, "the walk must cover the whole state");
        return fields;
    }

    /// <summary>The graft's own header fields and the start and length of each child's section.</summary>
    public static (List<CorruptibleField> Fields, (int Start, int Length) M, (int Start, int Length) D) OfGraft(byte[] bytes)
    {
        var fields = new List<CorruptibleField>();
        using var reader = new BinaryReader(new MemoryStream(bytes));
        int Pos() => (int)reader.BaseStream.Position;

        Header(reader, "graft: ", fields);
        fields.Add(new CorruptibleField("graft: granularity", Pos(), FlipLowBit));
        reader.ReadInt32();
        fields.Add(new CorruptibleField("graft: block size", Pos(), FlipLowBit));
        reader.ReadInt64();
        fields.Add(new CorruptibleField("graft: epsilon", Pos(), FlipLowBit));
        reader.ReadDouble();
        var sections = new (int, int)[2];
        for (int c = 0; c < 2; c++) {
            string child = c == 0 ? "M" : "D";
            int before = Pos();
            reader.ReadString();
            fields.Add(new CorruptibleField($"graft: {child}'s type name", before + 1, FlipCase));
            fields.Add(new CorruptibleField($"graft: {child}'s section length", Pos(), FlipLowBit));
            long length = reader.ReadInt64();
            sections[c] = (Pos(), checked((int)length));
            reader.ReadBytes((int)length);
        }
        fields.Add(new CorruptibleField("graft: graft point", Pos(), FlipLowBit));
        reader.ReadInt32();
        fields.Add(new CorruptibleField("graft: momentum slot count", Pos(), FlipLowBit));
        int momentumSlots = reader.ReadInt32();
        for (int i = 0; i < momentumSlots; i++) {
            // Presence flags of the graft's own momentum (GraftPoint.BeforeMomentum); absent for the default point.
            fields.Add(new CorruptibleField($"graft: momentum {i} presence flag", Pos(), FlipLowBit));
            reader.ReadBoolean().Should().BeFalse("these tests use the default graft point, which keeps no momentum");
        }
        reader.BaseStream.Position.Should().Be(reader.BaseStream.Length, "the walk must cover the whole graft");
        return (fields, sections[0], sections[1]);
    }

    /// <summary>The checkpoint tag ("AdaGraft checkpoint: {type}") and format version every AdaGraft checkpoint starts with.</summary>
    private static void Header(BinaryReader reader, string prefix, List<CorruptibleField> fields)
    {
        int at = (int)reader.BaseStream.Position;
        string tag = reader.ReadString();
        tag.Should().StartWith(AdaGraft.Optimizers.Checkpoint.TagPrefix);
        fields.Add(new CorruptibleField(prefix + "checkpoint tag length", at, FlipLowBit));
        fields.Add(new CorruptibleField(prefix + "checkpoint tag", at + 1, FlipCase));
        fields.Add(new CorruptibleField(prefix + "checkpoint type", at + 1 + AdaGraft.Optimizers.Checkpoint.TagPrefix.Length, FlipCase));
        fields.Add(new CorruptibleField(prefix + "format version", (int)reader.BaseStream.Position, FlipLowBit));
        fields.Add(new CorruptibleField(prefix + "format version sign", (int)reader.BaseStream.Position + 3, _ => 0x80));
        reader.ReadInt32();
    }

    private static long Leb128(BinaryReader reader)
    {
        long result = 0;
        for (int shift = 0; ; shift += 7) {
            byte b = reader.ReadByte();
            result |= (long)(b & 0x7f) << shift;
            if ((b & 0x80) == 0) return result;
        }
    }

    private static long ElementSize(int dtype) => dtype switch {
        7 => 8, // Float64
        6 => 4, // Float32
        5 or 15 => 2, // Float16, BFloat16
        _ => throw new ArgumentOutOfRangeException(nameof(dtype), dtype, "a dtype these tests do not save"),
    };
}
