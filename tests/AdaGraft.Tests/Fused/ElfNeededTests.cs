using System.Buffers.Binary;
using System.Text;
using AdaGraft.Rules;

namespace AdaGraft.Tests.Fused;

/// <summary>
/// The bounds-checked ELF reader behind <see cref="OpenMpRunner"/>: it finds the needed sonames through the program
/// headers, and anything truncated, corrupted or foreign is "not identified" (null), never an exception.
/// </summary>
public class ElfNeededTests
{
    /// <summary>A minimal ELF64 shared object: PT_LOAD (virtual addresses 0x10000 above file offsets), PT_DYNAMIC, a string table.</summary>
    private static byte[] MinimalElf(params string[] needed)
    {
        const ulong Base = 0x10000;
        var strtab = new List<byte> { 0 };
        var offsets = new List<int>();
        foreach (var name in needed) {
            offsets.Add(strtab.Count);
            strtab.AddRange(Encoding.ASCII.GetBytes(name));
            strtab.Add(0);
        }
        int phoff = 64, dynoff = phoff + 2 * 56, dynCount = needed.Length + 3, stroff = dynoff + dynCount * 16;
        var elf = new byte[stroff + strtab.Count];
        new byte[] { 0x7f, (byte)'E', (byte)'L', (byte)'F', 2, 1, 1 }.CopyTo(elf, 0);
        BinaryPrimitives.WriteUInt16LittleEndian(elf.AsSpan(0x10), 3); // ET_DYN
        BinaryPrimitives.WriteUInt64LittleEndian(elf.AsSpan(0x20), (ulong)phoff);
        BinaryPrimitives.WriteUInt16LittleEndian(elf.AsSpan(0x36), 56);
        BinaryPrimitives.WriteUInt16LittleEndian(elf.AsSpan(0x38), 2);
        void Phdr(int at, uint type, ulong offset, ulong size)
        {
            BinaryPrimitives.WriteUInt32LittleEndian(elf.AsSpan(at), type);
            BinaryPrimitives.WriteUInt64LittleEndian(elf.AsSpan(at + 8), offset);
            BinaryPrimitives.WriteUInt64LittleEndian(elf.AsSpan(at + 16), Base + offset);
            BinaryPrimitives.WriteUInt64LittleEndian(elf.AsSpan(at + 32), size);
            BinaryPrimitives.WriteUInt64LittleEndian(elf.AsSpan(at + 40), size);
        }
        Phdr(phoff, 1, 0, (ulong)elf.Length);
        Phdr(phoff + 56, 2, (ulong)dynoff, (ulong)(dynCount * 16));
        int e = dynoff;
        void Dyn(long tag, ulong value)
        {
            BinaryPrimitives.WriteInt64LittleEndian(elf.AsSpan(e), tag);
            BinaryPrimitives.WriteUInt64LittleEndian(elf.AsSpan(e + 8), value);
            e += 16;
        }
        foreach (var o in offsets) Dyn(1, (ulong)o);
        Dyn(5, Base + (ulong)stroff);
        Dyn(10, (ulong)strtab.Count);
        Dyn(0, 0);
        strtab.ToArray().CopyTo(elf, stroff);
        return elf;
    }

    [Fact]
    public void TheParserReadsTheNeededNamesThroughTheLoadSegment() =>
        ElfNeeded.Parse(MinimalElf("libc10.so", "libgomp-98b21ff3.so.1")).Should().Equal("libc10.so", "libgomp-98b21ff3.so.1");

    /// <summary>Every truncation of a well-formed image is "not identified" (its string table ends the file), never an exception.</summary>
    [Fact]
    public void EveryTruncatedImageIsNotIdentified()
    {
        var elf = MinimalElf("libc10.so", "libgomp.so.1");
        for (int n = 0; n < elf.Length; n++) ElfNeeded.Parse(elf[..n]).Should().BeNull($"truncated to {n} bytes");
    }

    /// <summary>Corrupting any single byte (to 0xff or 0) never throws nor reads past the end: a result or null.</summary>
    [Fact]
    public void CorruptedImagesNeverThrow()
    {
        var elf = MinimalElf("libc10.so", "libgomp.so.1");
        int identified = 0;
        foreach (byte value in new byte[] { 0xff, 0 }) {
            for (int i = 0; i < elf.Length; i++) {
                var bad = (byte[])elf.Clone();
                bad[i] = value;
                var act = () => ElfNeeded.Parse(bad);
                if (act.Should().NotThrow().Subject is not null) identified++;
            }
        }
        identified.Should().BeLessThan(2 * elf.Length, "corrupting the header, offsets or names makes some images unreadable");
    }

    public static TheoryData<string> Garbage() => new() { "empty", "text", "random", "elf32", "big-endian", "no dynamic" };

    [Theory]
    [MemberData(nameof(Garbage))]
    public void GarbageIsNotIdentified(string kind)
    {
        byte[] bytes = kind switch {
            "empty" => Array.Empty<byte>(),
            "text" => Encoding.ASCII.GetBytes("#!/bin/sh\necho not an ELF file, but long enough to hold a header ........................\n"),
            "random" => RandomBytes(),
            "elf32" => Patched(4, 1),
            "big-endian" => Patched(5, 2),
            "no dynamic" => Patched(64 + 56, 6), // the PT_DYNAMIC header becomes PT_PHDR
            _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, null),
        };
        ElfNeeded.Parse(bytes).Should().BeNull();

        static byte[] RandomBytes()
        {
            var r = new Random(12);
            var b = new byte[4096];
            r.NextBytes(b);
            new byte[] { 0x7f, (byte)'E', (byte)'L', (byte)'F', 2, 1, 1 }.CopyTo(b, 0);
            return b;
        }
        static byte[] Patched(int at, byte value)
        {
            var b = MinimalElf("libgomp.so.1");
            b[at] = value;
            return b;
        }
    }
}
