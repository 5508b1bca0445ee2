using System.Diagnostics;
using System.Text;
using AdaGraft.Build;

namespace AdaGraft.Tests.Build;

/// <summary>
/// The libLibTorchSharp.so fix (src/AdaGraft/build/ElfVersionPatch.cs, run by AdaGraft.targets after every build):
/// TorchSharp's shipped library is the known case and gets exactly its GLIBCXX_3.4.32 flags changed, by a new file
/// renamed over the path; a patched file is not written again; truncated, garbage, cyclic and otherwise altered
/// files are left unchanged with a message and no exception; and this test's own output copy is the patched form
/// and loads.
/// </summary>
public sealed class ElfPatchTests : IDisposable
{
    private const uint ShtGnuVerneed = 0x6ffffffe;
    private const uint ShtGnuVersym = 0x6fffffff;
    private const uint ShtDynsym = 11;
    private const uint ShtRela = 4;

    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("adagraft-elf-");

    public void Dispose() => _dir.Delete(recursive: true);

    // ---------------------------------------------------------------- the shipped library

    /// <summary>TorchSharp 0.107's libLibTorchSharp.so in the NuGet package cache (NUGET_PACKAGES or ~/.nuget/packages).</summary>
    private static string ShippedPath()
    {
        string? packages = Environment.GetEnvironmentVariable("NUGET_PACKAGES");
        if (string.IsNullOrEmpty(packages)) {
            packages = Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");
        }
        string path = Path.Combine(packages, "torchsharp", "0.107.0", "runtimes", "linux-x64", "native", "libLibTorchSharp.so");
        File.Exists(path).Should().BeTrue($"TorchSharp 0.107's native library must be in the package cache at {path}");
        return path;
    }

    private static byte[] Shipped() => File.ReadAllBytes(ShippedPath());

    private string Write(string name, byte[] bytes)
    {
        string path = Path.Combine(_dir.FullName, name);
        File.WriteAllBytes(path, bytes);
        return path;
    }

    [Fact]
    public void TheShippedLibraryIsTheKnownCase()
    {
        byte[] shipped = Shipped();
        ElfPatchResult result = ElfVersionPatch.Analyze(shipped);

        result.Outcome.Should().Be(ElfPatchOutcome.NeedsPatch, result.Message);
        result.IsWarning.Should().BeFalse();
        var elf = new Elf(shipped);
        Need known = elf.Needs().Single(n => n.Name == ElfVersionPatch.KnownVersion);
        result.FlagsOffset.Should().Be(known.FlagsOffset);
        known.Flags.Should().Be(0, "TorchSharp ships the need as a hard one");
    }

    [Fact]
    public void PatchingACopyChangesOnlyTheFlagsOfTheKnownVersionNeedAndKeepsTheModificationTime()
    {
        byte[] shipped = Shipped();
        string path = Write("libLibTorchSharp.so", shipped);
        var modified = new DateTime(2020, 1, 2, 3, 4, 5, DateTimeKind.Utc);
        File.SetLastWriteTimeUtc(path, modified);

        ElfPatchResult result = ElfVersionPatch.PatchFile(path);

        result.Outcome.Should().Be(ElfPatchOutcome.Patched, result.Message);
        byte[] patched = File.ReadAllBytes(path);
        patched.Length.Should().Be(shipped.Length);
        var differing = Enumerable.Range(0, shipped.Length).Where(i => shipped[i] != patched[i]).ToList();
        differing.Should().NotBeEmpty().And.OnlyContain(i => i == result.FlagsOffset || i == result.FlagsOffset + 1);
        new Elf(patched).Needs().Single(n => n.Name == ElfVersionPatch.KnownVersion).Flags.Should().Be(ElfVersionPatch.VerFlagWeak);
        File.GetLastWriteTimeUtc(path).Should().Be(modified, "MSBuild's skip-unchanged copy compares size and time");
        _dir.GetFileSystemInfos().Select(f => f.Name).Should().Equal(new[] { "libLibTorchSharp.so" }, "no temporary file stays behind");
    }

    [Fact]
    public void APatchedCopyIsAlreadyPatchedAndNotWrittenAgain()
    {
        string target = Write("patched.so", Shipped());
        ElfVersionPatch.PatchFile(target).Outcome.Should().Be(ElfPatchOutcome.Patched);
        byte[] before = File.ReadAllBytes(target);
        // A write replaces the path by a new file; a symbolic link at the path shows whether that happened.
        string link = Path.Combine(_dir.FullName, "libLibTorchSharp.so");
        File.CreateSymbolicLink(link, target);

        ElfPatchResult again = ElfVersionPatch.PatchFile(link);

        again.Outcome.Should().Be(ElfPatchOutcome.AlreadyPatched, again.Message);
        again.IsWarning.Should().BeFalse();
        again.Message.Should().Contain("already weak");
        new FileInfo(link).LinkTarget.Should().Be(target, "nothing was written at the path");
        File.ReadAllBytes(target).Should().Equal(before);
    }

    [Fact]
    public void APathThatIsASymbolicLinkIsReplacedAndItsTargetIsNotWritten()
    {
        byte[] shipped = Shipped();
        string cache = Write("cache.so", shipped);
        string link = Path.Combine(_dir.FullName, "libLibTorchSharp.so");
        File.CreateSymbolicLink(link, cache);

        ElfVersionPatch.PatchFile(link).Outcome.Should().Be(ElfPatchOutcome.Patched);

        new FileInfo(link).LinkTarget.Should().BeNull("the link was replaced by a new file");
        File.ReadAllBytes(cache).Should().Equal(shipped, "the link's target stands for the NuGet cache");
        ElfVersionPatch.Analyze(File.ReadAllBytes(link)).Outcome.Should().Be(ElfPatchOutcome.AlreadyPatched);
    }

    [Fact]
    public void APathThatIsAHardLinkIsReplacedAndTheOtherNameKeepsTheShippedBytes()
    {
        byte[] shipped = Shipped();
        string cache = Write("cache.so", shipped);
        string output = Path.Combine(_dir.FullName, "libLibTorchSharp.so");
        using (Process ln = Process.Start(new ProcessStartInfo("ln", [cache, output]) { UseShellExecute = false })!) {
            ln.WaitForExit();
            ln.ExitCode.Should().Be(0);
        }

        ElfVersionPatch.PatchFile(output).Outcome.Should().Be(ElfPatchOutcome.Patched);

        File.ReadAllBytes(cache).Should().Equal(shipped);
        ElfVersionPatch.Analyze(File.ReadAllBytes(output)).Outcome.Should().Be(ElfPatchOutcome.AlreadyPatched);
    }

    // ---------------------------------------------------------------- not the known case: left as it is, with a reason

    private void ExpectUnchanged(byte[] bytes, ElfPatchOutcome outcome, string inMessage)
    {
        string path = Write("libLibTorchSharp.so", bytes);
        ElfPatchResult result = ElfVersionPatch.PatchFile(path);

        result.Outcome.Should().Be(outcome, result.Message);
        result.Message.Should().Contain(inMessage);
        result.IsWarning.Should().Be(outcome != ElfPatchOutcome.NotNeeded);
        File.ReadAllBytes(path).Should().Equal(bytes, "the file is left as it was");
        _dir.GetFileSystemInfos().Should().HaveCount(1, "no temporary file stays behind");
    }

    public static TheoryData<string> Truncations() => new() { "empty", "inside the magic", "inside the ELF header", "after the ELF header", "inside the section headers", "inside .gnu.version_r", "one byte short" };

    [Theory]
    [MemberData(nameof(Truncations))]
    public void ATruncatedLibraryIsLeftUnchangedWithAMessage(string where)
    {
        byte[] shipped = Shipped();
        var elf = new Elf(shipped);
        long length = where switch {
            "empty" => 0,
            "inside the magic" => 3,
            "inside the ELF header" => 40,
            "after the ELF header" => 64,
            "inside the section headers" => elf.SectionHeaderOffset + 3 * 64 + 17,
            "inside .gnu.version_r" => elf.Section(ShtGnuVerneed).Offset + 0x50,
            _ => shipped.Length - 1,
        };

        ExpectUnchanged(shipped.AsSpan(0, (int)length).ToArray(), ElfPatchOutcome.Malformed, "malformed ELF");
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void RandomGarbageIsLeftUnchangedWithAMessage(int seed)
    {
        byte[] garbage = new byte[100_000];
        new Random(seed).NextBytes(garbage);

        ExpectUnchanged(garbage, ElfPatchOutcome.Malformed, "no ELF magic number");
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(4)]
    public void AnElfHeaderFollowedByGarbageIsLeftUnchangedWithAMessage(int seed)
    {
        byte[] shipped = Shipped();
        byte[] bytes = new byte[200_000];
        new Random(seed).NextBytes(bytes);
        Array.Copy(shipped, bytes, 64);
        if (seed > 2) {
            // Section headers that lie inside the file, full of garbage.
            Elf.WriteU64(bytes, 0x28, 1000);
            Elf.WriteU16(bytes, 0x3C, (ushort)(seed * 40));
        }

        ExpectUnchanged(bytes, ElfPatchOutcome.Malformed, "malformed ELF");
    }

    [Fact]
    public void ABigEndianOr32BitElfFileIsNotTheKnownCase()
    {
        byte[] bytes = Shipped();
        bytes[4] = 1; // ELFCLASS32

        ExpectUnchanged(bytes, ElfPatchOutcome.NotKnownCase, "not a little-endian 64-bit ELF file");
    }

    [Fact]
    public void ALibraryThatAlsoNeedsANewerLibstdcxxVersionIsLeftUnchangedAndTheVersionIsNamed()
    {
        byte[] bytes = Shipped();
        var elf = new Elf(bytes);
        elf.RenameNeed("GLIBCXX_3.4.30", "GLIBCXX_3.4.33");

        ExpectUnchanged(bytes, ElfPatchOutcome.NotKnownCase, "GLIBCXX_3.4.33 as well as GLIBCXX_3.4.32");
    }

    [Fact]
    public void ALibraryNeedingNoNewLibstdcxxVersionIsLeftAloneWithALowMessage()
    {
        byte[] bytes = Shipped();
        new Elf(bytes).RenameNeed("GLIBCXX_3.4.32", "GLIBCXX_3.4.12");

        ExpectUnchanged(bytes, ElfPatchOutcome.NotNeeded, "needs no libstdc++ version newer than");
    }

    [Fact]
    public void ALibraryWithAnotherSymbolOfTheKnownVersionIsLeftUnchangedAndTheSymbolIsNamed()
    {
        byte[] bytes = Shipped();
        var elf = new Elf(bytes);
        int index = elf.Needs().Single(n => n.Name == ElfVersionPatch.KnownVersion).Other;
        Section versym = elf.Section(ShtGnuVersym);
        // The first global symbol of another version gets the known version's index.
        long symbol = Enumerable.Range(2, (int)(versym.Size / 2) - 2).First(i => Elf.ReadU16(bytes, versym.Offset + i * 2) > 1 && Elf.ReadU16(bytes, versym.Offset + i * 2) != index);
        string name = elf.SymbolName(symbol);
        Elf.WriteU16(bytes, versym.Offset + symbol * 2, (ushort)index);

        ExpectUnchanged(bytes, ElfPatchOutcome.NotKnownCase, "2 dynamic symbols have version GLIBCXX_3.4.32");
        ElfVersionPatch.Analyze(bytes).Message.Should().Contain(name).And.Contain(ElfVersionPatch.KnownSymbol);
    }

    [Fact]
    public void ALibraryThatRelocatesAgainstTheKnownSymbolIsLeftUnchanged()
    {
        byte[] bytes = Shipped();
        var elf = new Elf(bytes);
        long symbol = elf.SymbolIndex(ElfVersionPatch.KnownSymbol);
        Section rela = elf.Sections().First(s => s.Type == ShtRela && s.Link == elf.Section(ShtDynsym).Index && s.Size > 0);
        ulong info = Elf.ReadU64(bytes, rela.Offset + 8);
        Elf.WriteU64(bytes, rela.Offset + 8, ((ulong)symbol << 32) | (info & 0xffffffff));

        ExpectUnchanged(bytes, ElfPatchOutcome.NotKnownCase, "refers to " + ElfVersionPatch.KnownSymbol);
    }

    // ---------------------------------------------------------------- broken version needs

    [Fact]
    public void AVnNextThatWouldLoopBackInThirtyTwoBitsEndsTheWalkAsMalformed()
    {
        byte[] bytes = Shipped();
        var elf = new Elf(bytes);
        List<long> entries = elf.NeedEntries();
        // 2^32 - (second - first): a 32-bit pointer sum would land on the first entry again and loop for ever.
        Elf.WriteU32(bytes, entries[1] + 12, (uint)(0x1_0000_0000L - (entries[1] - entries[0])));

        ExpectUnchanged(bytes, ElfPatchOutcome.Malformed, "outside the section or repeats");
    }

    [Fact]
    public void AVnNextOntoAnEarlierEntrysAuxiliaryEntryIsMalformed()
    {
        byte[] bytes = Shipped();
        var elf = new Elf(bytes);
        long first = elf.NeedEntries()[0];
        Elf.WriteU32(bytes, first + 12, 16); // onto the first entry's own vernaux

        ExpectUnchanged(bytes, ElfPatchOutcome.Malformed, "repeats");
    }

    [Fact]
    public void AVnAuxOfZeroMakesTheEntryItsOwnAuxiliaryAndIsMalformed()
    {
        byte[] bytes = Shipped();
        var elf = new Elf(bytes);
        Elf.WriteU32(bytes, elf.NeedEntries()[0] + 8, 0);

        ExpectUnchanged(bytes, ElfPatchOutcome.Malformed, "repeats");
    }

    [Fact]
    public void AVersionNeedSectionCutShortIsMalformed()
    {
        byte[] bytes = Shipped();
        var elf = new Elf(bytes);
        Elf.WriteU64(bytes, elf.SectionHeader(elf.Section(ShtGnuVerneed).Index) + 0x20, 0x50);

        ExpectUnchanged(bytes, ElfPatchOutcome.Malformed, "outside the section");
    }

    [Fact]
    public void AVersionNameOutsideItsStringTableIsMalformed()
    {
        byte[] bytes = Shipped();
        var elf = new Elf(bytes);
        Need known = elf.Needs().Single(n => n.Name == ElfVersionPatch.KnownVersion);
        Elf.WriteU32(bytes, known.FlagsOffset + 4, 0x7fff_fff0); // vna_name

        ExpectUnchanged(bytes, ElfPatchOutcome.Malformed, "outside its string table");
    }

    [Fact]
    public void AnUnterminatedStringAtTheEndOfTheStringTableIsMalformed()
    {
        byte[] bytes = Shipped();
        var elf = new Elf(bytes);
        Section strings = elf.Sections()[(int)elf.Section(ShtGnuVerneed).Link];
        // The string table now ends in the middle of the last name the version needs use (the earlier ones still fit).
        uint last = elf.Needs().SelectMany(n => new[] { n.FileIndex, n.NameIndex }).Max();
        Elf.WriteU64(bytes, elf.SectionHeader(strings.Index) + 0x20, last + 5);

        ExpectUnchanged(bytes, ElfPatchOutcome.Malformed, "is not terminated");
    }

    [Fact]
    public void AFileThatCannotBeReadIsReportedNotThrown()
    {
        ElfPatchResult missing = ElfVersionPatch.PatchFile(Path.Combine(_dir.FullName, "absent.so"));
        ElfPatchResult directory = ElfVersionPatch.PatchFile(_dir.FullName);

        missing.Outcome.Should().Be(ElfPatchOutcome.IoFailure);
        missing.IsWarning.Should().BeTrue();
        directory.Outcome.Should().Be(ElfPatchOutcome.IoFailure);
    }

    // ---------------------------------------------------------------- the build's own output copy

    [Fact]
    public void ThisTestsOutputCopyIsTheShippedLibraryWithTheKnownNeedWeakAndItLoads()
    {
        string output = Path.Combine(AppContext.BaseDirectory, "runtimes", "linux-x64", "native", "libLibTorchSharp.so");
        File.Exists(output).Should().BeTrue($"the build copies TorchSharp's native library to {output}");
        byte[] expected = Shipped();
        ElfPatchResult analysis = ElfVersionPatch.Analyze(expected);
        expected[analysis.FlagsOffset] |= (byte)ElfVersionPatch.VerFlagWeak;

        File.ReadAllBytes(output).Should().Equal(expected, "AdaGraft.targets patched the output copy after the build");
        using var scope = torch.NewDisposeScope();
        torch.ones(3).sum().item<float>().Should().Be(3f, "TorchSharp's native library loads and runs in this process");
    }

    // ---------------------------------------------------------------- a small ELF reader for building the cases

    private sealed record Section(int Index, uint Type, long Offset, long Size, uint Link);

    private sealed record Need(string File, string Name, ushort Flags, ushort Other, long FlagsOffset, uint NameIndex, uint FileIndex);

    private sealed class Elf(byte[] bytes)
    {
        public long SectionHeaderOffset => (long)ReadU64(bytes, 0x28);

        public long SectionHeader(int index) => SectionHeaderOffset + index * 64L;

        public List<Section> Sections() =>
            Enumerable.Range(0, ReadU16(bytes, 0x3C)).Select(i => {
                long h = SectionHeader(i);
                return new Section(i, ReadU32(bytes, h + 4), (long)ReadU64(bytes, h + 0x18), (long)ReadU64(bytes, h + 0x20), ReadU32(bytes, h + 0x28));
            }).ToList();

        public Section Section(uint type) => Sections().Single(s => s.Type == type);

        public List<long> NeedEntries()
        {
            var entries = new List<long>();
            long entry = Section(ShtGnuVerneed).Offset;
            while (true) {
                entries.Add(entry);
                uint next = ReadU32(bytes, entry + 12);
                if (next == 0) {
                    return entries;
                }
                entry += next;
            }
        }

        public List<Need> Needs()
        {
            Section strings = Sections()[(int)Section(ShtGnuVerneed).Link];
            var needs = new List<Need>();
            foreach (long entry in NeedEntries()) {
                uint fileIndex = ReadU32(bytes, entry + 4);
                string file = ReadString(strings, fileIndex);
                long aux = entry + ReadU32(bytes, entry + 8);
                for (int i = 0; i < ReadU16(bytes, entry + 2); i++) {
                    uint name = ReadU32(bytes, aux + 8);
                    needs.Add(new Need(file, ReadString(strings, name), ReadU16(bytes, aux + 4), ReadU16(bytes, aux + 6), aux + 4, name, fileIndex));
                    aux += ReadU32(bytes, aux + 12);
                }
            }
            return needs;
        }

        /// <summary>Rewrites a version need's name in place (same length), as if the library had been linked against another version.</summary>
        public void RenameNeed(string from, string to)
        {
            from.Length.Should().Be(to.Length);
            Need need = Needs().Single(n => n.Name == from);
            Section strings = Sections()[(int)Section(ShtGnuVerneed).Link];
            Encoding.ASCII.GetBytes(to).CopyTo(bytes, strings.Offset + need.NameIndex);
        }

        public string SymbolName(long symbol)
        {
            Section dynsym = Section(ShtDynsym);
            return ReadString(Sections()[(int)dynsym.Link], ReadU32(bytes, dynsym.Offset + symbol * 24));
        }

        public long SymbolIndex(string name) =>
            Enumerable.Range(0, (int)(Section(ShtDynsym).Size / 24)).Single(i => SymbolName(i) == name);

        private string ReadString(Section table, uint index)
        {
            int start = (int)(table.Offset + index);
            int end = Array.IndexOf(bytes, (byte)0, start);
            return Encoding.ASCII.GetString(bytes, start, end - start);
        }

        public static ushort ReadU16(byte[] b, long at) => BitConverter.ToUInt16(b, (int)at);

        public static uint ReadU32(byte[] b, long at) => BitConverter.ToUInt32(b, (int)at);

        public static ulong ReadU64(byte[] b, long at) => BitConverter.ToUInt64(b, (int)at);

        public static void WriteU16(byte[] b, long at, ushort v) => BitConverter.GetBytes(v).CopyTo(b, at);

        public static void WriteU32(byte[] b, long at, uint v) => BitConverter.GetBytes(v).CopyTo(b, at);

        public static void WriteU64(byte[] b, long at, ulong v) => BitConverter.GetBytes(v).CopyTo(b, at);
    }
}
