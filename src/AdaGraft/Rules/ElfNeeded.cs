using System.Buffers.Binary;

namespace AdaGraft.Rules;

/// <summary>
/// Reads the <c>DT_NEEDED</c> entries (the sonames a shared library was linked against) from the dynamic section of a
/// 64-bit little-endian ELF file, the way the dynamic loader finds it: program headers, <c>PT_DYNAMIC</c>, and the
/// string table addressed by <c>DT_STRTAB</c> mapped to a file offset through its <c>PT_LOAD</c> segment.
/// </summary>
/// <remarks>
/// Every offset and size is checked against the file before it is read, so truncated or garbage input returns null
/// (not identified) instead of throwing or reading out of bounds. Only the header, program headers, dynamic section
/// and the needed names are read, not the whole file (libtorch_cpu.so is about 450 MB).
/// </remarks>
internal static class ElfNeeded
{
    private const int HeaderSize = 64, ProgramHeaderSize = 56, DynamicEntrySize = 16;
    private const uint PtLoad = 1, PtDynamic = 2;
    private const long DtNull = 0, DtNeeded = 1, DtStrTab = 5, DtStrSz = 10;
    private const long MaxDynamicSize = 1 << 20;
    private const int MaxNameLength = 4096;

    /// <summary>The needed sonames of the ELF image in <paramref name="bytes"/>, or null when it is not a well-formed one.</summary>
    internal static IReadOnlyList<string>? Parse(byte[] bytes)
    {
        ArgumentNullException.ThrowIfNull(bytes);
        using var stream = new MemoryStream(bytes, writable: false);
        return Parse(stream);
    }

    /// <summary>The needed sonames of the ELF file at <paramref name="path"/>, or null when it cannot be read or is not well formed.</summary>
    internal static IReadOnlyList<string>? ParseFile(string path)
    {
        try {
            using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete, bufferSize: 1);
            return Parse(stream);
        } catch (IOException) {
            return null;
        } catch (UnauthorizedAccessException) {
            return null;
        }
    }

    /// <summary>The needed sonames of the ELF image in <paramref name="elf"/> (seekable), or null when it is not a well-formed one.</summary>
    internal static IReadOnlyList<string>? Parse(Stream elf)
    {
        ArgumentNullException.ThrowIfNull(elf);
        if (!elf.CanSeek || !elf.CanRead) return null;
        long length = elf.Length;

        Span<byte> header = stackalloc byte[HeaderSize];
        if (!Read(elf, length, 0, header)) return null;
        // \x7fELF, ELFCLASS64, ELFDATA2LSB, EV_CURRENT.
        if (header[0] != 0x7f || header[1] != (byte)'E' || header[2] != (byte)'L' || header[3] != (byte)'F'
            || header[4] != 2 || header[5] != 1 || header[6] != 1)
            return null;
        ulong phoff = BinaryPrimitives.ReadUInt64LittleEndian(header[0x20..]);
        int phentsize = BinaryPrimitives.ReadUInt16LittleEndian(header[0x36..]);
        int phnum = BinaryPrimitives.ReadUInt16LittleEndian(header[0x38..]);
        // PN_XNUM (0xffff) keeps the real count elsewhere; shared libraries never need it.
        if (phentsize < ProgramHeaderSize || phnum == 0 || phnum == 0xffff) return null;
        if (!Fits(phoff, (ulong)phentsize * (ulong)phnum, length)) return null;

        var loads = new List<(ulong VAddr, ulong Offset, ulong FileSize)>();
        (ulong Offset, ulong Size)? dynamic = null;
        Span<byte> ph = stackalloc byte[ProgramHeaderSize];
        for (int i = 0; i < phnum; i++) {
            if (!Read(elf, length, (long)phoff + (long)i * phentsize, ph)) return null;
            uint type = BinaryPrimitives.ReadUInt32LittleEndian(ph);
            ulong offset = BinaryPrimitives.ReadUInt64LittleEndian(ph[8..]);
            ulong vaddr = BinaryPrimitives.ReadUInt64LittleEndian(ph[16..]);
            ulong filesz = BinaryPrimitives.ReadUInt64LittleEndian(ph[32..]);
            if (type == PtLoad) {
                if (!Fits(offset, filesz, length)) return null;
                loads.Add((vaddr, offset, filesz));
            } else if (type == PtDynamic) {
                if (dynamic is not null) return null; // two dynamic sections: ambiguous
                dynamic = (offset, filesz);
            }
        }
        if (dynamic is not var (dynOffset, dynSize) || dynSize == 0 || dynSize > MaxDynamicSize || dynSize % DynamicEntrySize != 0
            || !Fits(dynOffset, dynSize, length))
            return null;

        var entries = new byte[dynSize];
        if (!Read(elf, length, (long)dynOffset, entries)) return null;
        var needed = new List<ulong>();
        ulong? strtab = null, strsz = null;
        bool terminated = false;
        for (int at = 0; at + DynamicEntrySize <= entries.Length; at += DynamicEntrySize) {
            long tag = BinaryPrimitives.ReadInt64LittleEndian(entries.AsSpan(at));
            ulong value = BinaryPrimitives.ReadUInt64LittleEndian(entries.AsSpan(at + 8));
            if (tag == DtNull) {
                terminated = true;
                break;
            }
            if (tag == DtNeeded) {
                needed.Add(value);
            } else if (tag == DtStrTab) {
                if (strtab is not null) return null;
                strtab = value;
            } else if (tag == DtStrSz) {
                if (strsz is not null) return null;
                strsz = value;
            }
        }
        if (!terminated || strtab is not ulong tableAddress || strsz is not ulong tableSize || tableSize == 0) return null;

        // The string table's file offset: through the PT_LOAD segment whose file part holds all of it.
        long? tableOffset = null;
        foreach (var (vaddr, offset, filesz) in loads) {
            if (tableAddress < vaddr || tableAddress - vaddr >= filesz) continue;
            ulong within = tableAddress - vaddr;
            if (tableSize > filesz - within) return null;
            if (tableOffset is not null) return null; // overlapping segments: ambiguous
            tableOffset = (long)(offset + within);
        }
        if (tableOffset is not long table || !Fits((ulong)table, tableSize, length)) return null;

        var names = new List<string>(needed.Count);
        var buffer = new byte[MaxNameLength];
        foreach (var nameOffset in needed) {
            if (nameOffset >= tableSize) return null;
            int count = (int)Math.Min((ulong)MaxNameLength, tableSize - nameOffset);
            var span = buffer.AsSpan(0, count);
            if (!Read(elf, length, table + (long)nameOffset, span)) return null;
            int end = span.IndexOf((byte)0);
            if (end <= 0) return null;
            var name = span[..end];
            // Sonames are printable ASCII.
            foreach (var b in name) {
                if (b <= 0x20 || b >= 0x7f) return null;
            }
            names.Add(System.Text.Encoding.ASCII.GetString(name));
        }
        return names;
    }

    /// <summary>True when [offset, offset + size) lies inside a file of <paramref name="length"/> bytes (no overflow).</summary>
    private static bool Fits(ulong offset, ulong size, long length) =>
        offset <= (ulong)length && size <= (ulong)length - offset;

    private static bool Read(Stream elf, long length, long offset, Span<byte> buffer)
    {
        if (offset < 0 || !Fits((ulong)offset, (ulong)buffer.Length, length)) return false;
        elf.Seek(offset, SeekOrigin.Begin);
        int done = 0;
        while (done < buffer.Length) {
            int n = elf.Read(buffer[done..]);
            if (n <= 0) return false;
            done += n;
        }
        return true;
    }
}
