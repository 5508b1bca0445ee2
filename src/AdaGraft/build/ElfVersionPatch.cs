// The libLibTorchSharp.so fix of AdaGraft.targets (see the comment there and README, "Older Linux").
//
// This one file is compiled in two places:
//   * by MSBuild's RoslynCodeTaskFactory, at build time, from AdaGraft.targets (<Code Source="...">): the whole file,
//     the task class AdaGraftRelaxElfVersionNeeds included, against .NET Standard 2.0 reference assemblies, so it
//     uses no API newer than that;
//   * by tests/AdaGraft.Tests, which links it and defines ADAGRAFT_ELF_PATCH_NO_TASK: only the ELF logic, which uses no
//     MSBuild type.
// The library project does not compile it.

#nullable enable

using System;
using System.Collections.Generic;
using System.IO;
using System.Text;

namespace AdaGraft.Build
{
    /// <summary>What <see cref="ElfVersionPatch"/> found or did.</summary>
    public enum ElfPatchOutcome
    {
        /// <summary>Analyze only: the known case, not yet patched.</summary>
        NeedsPatch,
        /// <summary>PatchFile only: the known case; the file was replaced by the patched bytes.</summary>
        Patched,
        /// <summary>The GLIBCXX_3.4.32 version need is already weak; nothing written.</summary>
        AlreadyPatched,
        /// <summary>No libstdc++ version need beyond what Debian 12 defines; nothing to do.</summary>
        NotNeeded,
        /// <summary>A well-formed ELF file that is not the known case; left as it is.</summary>
        NotKnownCase,
        /// <summary>The file is not a well-formed ELF file; left as it is.</summary>
        Malformed,
        /// <summary>Reading or replacing the file failed; left as it is.</summary>
        IoFailure,
    }

    /// <summary>An outcome and the one sentence the build prints about it.</summary>
    public sealed class ElfPatchResult
    {
        internal ElfPatchResult(ElfPatchOutcome outcome, string message, long flagsOffset = -1)
        {
            Outcome = outcome;
            Message = message;
            FlagsOffset = flagsOffset;
        }

        /// <summary>What was found or done.</summary>
        public ElfPatchOutcome Outcome { get; }

        /// <summary>The build message (without the file name).</summary>
        public string Message { get; }

        /// <summary>The file offset of the GLIBCXX_3.4.32 vernaux's vna_flags (NeedsPatch, Patched, AlreadyPatched), else -1.</summary>
        public long FlagsOffset { get; }

        /// <summary>A real surprise: the build reports it as a warning, everything else as a message.</summary>
        public bool IsWarning =>
            Outcome == ElfPatchOutcome.NotKnownCase || Outcome == ElfPatchOutcome.Malformed || Outcome == ElfPatchOutcome.IoFailure;
    }

    /// <summary>
    /// Recognises TorchSharp 0.107's libLibTorchSharp.so (whose only libstdc++ version need beyond Debian 12's
    /// libstdc++ is GLIBCXX_3.4.32, carried by one symbol, _ZSt21ios_base_library_initv, which nothing relocates
    /// against) and marks that one version need weak. Every read is bounds-checked; nothing here throws.
    /// </summary>
    public static class ElfVersionPatch
    {
        /// <summary>The version need that is marked weak.</summary>
        public const string KnownVersion = "GLIBCXX_3.4.32";

        /// <summary>The only dynamic symbol that may carry <see cref="KnownVersion"/>.</summary>
        public const string KnownSymbol = "_ZSt21ios_base_library_initv";

        /// <summary>VER_FLG_WEAK in vna_flags.</summary>
        public const ushort VerFlagWeak = 0x2;

        /// <summary>The newest libstdc++ versions of Debian 12 (GCC 12), which the known case is measured against.</summary>
        public const string Baseline = "GLIBCXX_3.4.30/CXXABI_1.3.13";

        private const uint ShtRela = 4;
        private const uint ShtStrtab = 3;
        private const uint ShtRel = 9;
        private const uint ShtDynsym = 11;
        private const uint ShtNobits = 8;
        private const uint ShtGnuVerneed = 0x6ffffffe;
        private const uint ShtGnuVersym = 0x6fffffff;
        private const int MaxStringLength = 4096;

        /// <summary>Classifies the bytes of an ELF file; never throws.</summary>
        public static ElfPatchResult Analyze(byte[] file)
        {
            if (file == null) return new ElfPatchResult(ElfPatchOutcome.Malformed, "malformed ELF: no bytes");
            try {
                return AnalyzeChecked(new Reader(file));
            } catch (ElfFormatException e) {
                return new ElfPatchResult(ElfPatchOutcome.Malformed, "malformed ELF: " + e.Message);
            }
        }

        /// <summary>
        /// Patches the file at <paramref name="path"/> if it is the known case: the patched bytes go to a new
        /// temporary file beside it, which then replaces it by a rename (the path's old file, or a link's target, is
        /// never written). The new file keeps the old one's permissions and modification time, so MSBuild's
        /// "skip unchanged files" copy does not copy the shipped library over it again on the next build. Never
        /// throws.
        /// </summary>
        public static ElfPatchResult PatchFile(string path)
        {
            byte[] bytes;
            DateTime modified;
            try {
                modified = File.GetLastWriteTimeUtc(path);
                bytes = File.ReadAllBytes(path);
            } catch (Exception e) when (IsIoFailure(e)) {
                return new ElfPatchResult(ElfPatchOutcome.IoFailure, "could not read the file (" + e.Message + "); left as it is");
            }

            ElfPatchResult analysis = Analyze(bytes);
            if (analysis.Outcome != ElfPatchOutcome.NeedsPatch) return analysis;

            long at = analysis.FlagsOffset;
            ushort flags = (ushort)(bytes[at] | (bytes[at + 1] << 8));
            flags |= VerFlagWeak;
            bytes[at] = (byte)(flags & 0xff);
            bytes[at + 1] = (byte)(flags >> 8);

            string directory = Path.GetDirectoryName(Path.GetFullPath(path)) ?? ".";
            string temporary = Path.Combine(directory, "." + Path.GetFileName(path) + "." + Guid.NewGuid().ToString("N") + ".adagraft-tmp");
            try {
                // A new file (the copy carries the permissions), overwritten with the patched bytes, then renamed over the path.
                File.Copy(path, temporary, false);
                using (var stream = new FileStream(temporary, FileMode.Open, FileAccess.Write, FileShare.None)) {
                    stream.SetLength(bytes.Length);
                    stream.Write(bytes, 0, bytes.Length);
                }
                File.SetLastWriteTimeUtc(temporary, modified);
                File.Replace(temporary, path, null);
            } catch (Exception e) when (IsIoFailure(e)) {
                return new ElfPatchResult(ElfPatchOutcome.IoFailure, "could not replace the file (" + e.Message + "); left as it is");
            } finally {
                TryDelete(temporary);
            }
            return new ElfPatchResult(ElfPatchOutcome.Patched,
                "marked its " + KnownVersion + " version need weak, so it also loads where libstdc++ lacks that version (Debian 12); see the AdaGraft README, 'Older Linux'",
                at);
        }

        private static bool IsIoFailure(Exception e) =>
            e is IOException || e is UnauthorizedAccessException || e is NotSupportedException || e is ArgumentException ||
            e is System.Security.SecurityException;

        private static void TryDelete(string path)
        {
            try {
                if (File.Exists(path)) {
                    File.Delete(path);
                }
            } catch (Exception e) when (IsIoFailure(e)) {
                // Best effort: a stray temporary file is harmless.
            }
        }

        private static ElfPatchResult AnalyzeChecked(Reader r)
        {
            if (r.Length < 4 || r.U8(0) != 0x7f || r.U8(1) != (byte)'E' || r.U8(2) != (byte)'L' || r.U8(3) != (byte)'F') {
                throw new ElfFormatException("no ELF magic number");
            }
            if (r.Length < 64) throw new ElfFormatException("the file ends inside the ELF header");
            if (r.U8(4) != 2 || r.U8(5) != 1) return NotKnown("not a little-endian 64-bit ELF file");

            long shoff = r.Offset(0x28, "e_shoff");
            int shentsize = r.U16(0x3A);
            int shnum = r.U16(0x3C);
            if (shoff == 0 || shnum == 0) throw new ElfFormatException("no section headers");
            if (shentsize != 64) throw new ElfFormatException("section header size " + shentsize + ", not 64");
            r.Require(shoff, (long)shnum * 64, "the section headers");

            var sections = new Section[shnum];
            for (int i = 0; i < shnum; i++) {
                long h = shoff + (long)i * 64;
                var s = new Section {
                    Index = i,
                    Type = r.U32(h + 4),
                    Offset = r.Offset(h + 0x18, "sh_offset"),
                    Size = r.Offset(h + 0x20, "sh_size"),
                    Link = r.U32(h + 0x28),
                    Info = r.U32(h + 0x2C),
                    EntrySize = r.Offset(h + 0x38, "sh_entsize"),
                };
                if (s.Type != ShtNobits && s.Type != 0) {
                    r.Require(s.Offset, s.Size, "section " + i);
                }
                sections[i] = s;
            }

            Section? verneed = Single(sections, ShtGnuVerneed, ".gnu.version_r");
            if (verneed == null) {
                return new ElfPatchResult(ElfPatchOutcome.NotNeeded, "needs no symbol versions; left as it is");
            }
            Section verneedStrings = StringTable(sections, verneed.Link, ".gnu.version_r");
            List<Need> needs = ReadNeeds(r, verneed, verneedStrings);

            var beyond = new List<string>();
            var known = new List<Need>();
            foreach (Need n in needs) {
                if (!n.File.StartsWith("libstdc++.", StringComparison.Ordinal)) continue;
                if (n.Name == KnownVersion) {
                    known.Add(n);
                } else if ((n.Flags & VerFlagWeak) == 0 && !InBaseline(n.Name)) {
                    beyond.Add(n.Name);
                }
            }
            if (known.Count > 1) return NotKnown("it lists " + KnownVersion + " " + known.Count + " times");
            if (beyond.Count > 0) {
                return NotKnown("it needs " + string.Join(", ", beyond.ToArray()) + (known.Count == 1 ? " as well as " + KnownVersion : "") +
                                " from libstdc++, newer than Debian 12's " + Baseline);
            }
            if (known.Count == 0) {
                return new ElfPatchResult(ElfPatchOutcome.NotNeeded,
                    "needs no libstdc++ version newer than Debian 12's " + Baseline + "; left as it is");
            }
            Need target = known[0];
            if ((target.Flags & VerFlagWeak) != 0) {
                return new ElfPatchResult(ElfPatchOutcome.AlreadyPatched,
                    "its " + KnownVersion + " version need is already weak; not rewritten", target.FlagsOffset);
            }
            int versionIndex = target.Other & 0x7fff;
            foreach (Need n in needs) {
                if (n != target && (n.Other & 0x7fff) == versionIndex) {
                    return NotKnown("version index " + versionIndex + " is given to both " + KnownVersion + " and " + n.Name);
                }
            }

            string? problem = CheckSymbols(r, sections, versionIndex);
            if (problem != null) return NotKnown(problem);
            return new ElfPatchResult(ElfPatchOutcome.NeedsPatch,
                "needs " + KnownVersion + " only for " + KnownSymbol + ", which nothing relocates against", target.FlagsOffset);
        }

        /// <summary>The symbols whose version index is <paramref name="versionIndex"/> must be exactly the known one, undefined, and not relocated against.</summary>
        private static string? CheckSymbols(Reader r, Section[] sections, int versionIndex)
        {
            Section dynsym = Single(sections, ShtDynsym, ".dynsym") ?? throw new ElfFormatException("version needs but no .dynsym section");
            Section versym = Single(sections, ShtGnuVersym, ".gnu.version") ?? throw new ElfFormatException("version needs but no .gnu.version section");
            if (dynsym.EntrySize != 24 || dynsym.Size % 24 != 0) {
                throw new ElfFormatException(".dynsym entry size " + dynsym.EntrySize + " or size " + dynsym.Size + " is not a multiple of 24");
            }
            long count = dynsym.Size / 24;
            if (versym.Size != count * 2 || versym.Link != dynsym.Index) {
                throw new ElfFormatException(".gnu.version does not match .dynsym (" + versym.Size / 2 + " entries for " + count + " symbols)");
            }
            Section names = StringTable(sections, dynsym.Link, ".dynsym");

            var carriers = new List<long>();
            for (long i = 0; i < count; i++) {
                if ((r.U16(versym.Offset + i * 2) & 0x7fff) == versionIndex) {
                    carriers.Add(i);
                    if (carriers.Count > 8) break;
                }
            }
            if (carriers.Count == 0) return "no dynamic symbol has version " + KnownVersion;
            var carrierNames = new List<string>();
            foreach (long i in carriers) {
                carrierNames.Add(r.CString(names, r.U32(dynsym.Offset + i * 24), "symbol " + i + "'s name"));
            }
            if (carriers.Count > 1 || carrierNames[0] != KnownSymbol) {
                return (carriers.Count > 8 ? "more than 8" : carriers.Count.ToString(System.Globalization.CultureInfo.InvariantCulture)) +
                       " dynamic symbols have version " + KnownVersion + " (" + string.Join(", ", carrierNames.ToArray()) +
                       "), not only " + KnownSymbol;
            }
            long symbol = carriers[0];
            if (r.U16(dynsym.Offset + symbol * 24 + 6) != 0) {
                return KnownSymbol + " is defined here, not only referred to";
            }
            foreach (Section s in sections) {
                if ((s.Type != ShtRela && s.Type != ShtRel) || s.Link != dynsym.Index) continue;
                long size = s.Type == ShtRela ? 24 : 16;
                if (s.EntrySize != size || s.Size % size != 0) {
                    throw new ElfFormatException("relocation section " + s.Index + " has entry size " + s.EntrySize);
                }
                for (long at = s.Offset; at < s.Offset + s.Size; at += size) {
                    if ((r.U64(at + 8) >> 32) == (ulong)symbol) {
                        return "relocation section " + s.Index + " refers to " + KnownSymbol;
                    }
                }
            }
            return null;
        }

        /// <summary>Walks .gnu.version_r as the loader does (vn_next, vna_next), with every entry inside the section, no entry visited twice, and the counts matching.</summary>
        private static List<Need> ReadNeeds(Reader r, Section verneed, Section strings)
        {
            var needs = new List<Need>();
            var seen = new HashSet<long>();
            long end = verneed.Offset + verneed.Size;
            long entry = verneed.Offset;
            long entries = 0;
            while (true) {
                if (entry < verneed.Offset || entry + 16 > end || !seen.Add(entry)) {
                    throw new ElfFormatException("a .gnu.version_r entry lies outside the section or repeats (vn_next)");
                }
                entries++;
                if (r.U16(entry) != 1) throw new ElfFormatException("unsupported Verneed version " + r.U16(entry));
                int count = r.U16(entry + 2);
                string file = r.CString(strings, r.U32(entry + 4), "vn_file");
                uint auxOffset = r.U32(entry + 8);
                uint next = r.U32(entry + 12);
                long aux = entry + auxOffset;
                int auxes = 0;
                while (count > 0) {
                    if (aux < verneed.Offset || aux + 16 > end || !seen.Add(aux)) {
                        throw new ElfFormatException("a .gnu.version_r auxiliary entry lies outside the section or repeats (vna_next)");
                    }
                    auxes++;
                    needs.Add(new Need {
                        File = file,
                        Flags = r.U16(aux + 4),
                        Other = r.U16(aux + 6),
                        Name = r.CString(strings, r.U32(aux + 8), "vna_name"),
                        FlagsOffset = aux + 4,
                    });
                    uint auxNext = r.U32(aux + 12);
                    if (auxNext == 0) break;
                    if (auxes == count) {
                        throw new ElfFormatException("vn_cnt " + count + " for " + file + " but vna_next goes on");
                    }
                    aux += auxNext;
                }
                if (auxes != count) {
                    throw new ElfFormatException("vn_cnt " + count + " for " + file + " but " + auxes + " entries");
                }
                if (next == 0) break;
                if (entries >= verneed.Info) {
                    throw new ElfFormatException(".gnu.version_r says " + verneed.Info + " entries but vn_next goes on");
                }
                entry += next;
            }
            if (entries != verneed.Info) {
                throw new ElfFormatException(".gnu.version_r says " + verneed.Info + " entries but has " + entries);
            }
            return needs;
        }

        private static bool InBaseline(string version)
        {
            if (version == "CXXABI_TM_1" || version == "CXXABI_FLOAT128") return true;
            return WithinSeries(version, "GLIBCXX_3.4", 30) || WithinSeries(version, "CXXABI_1.3", 13);
        }

        /// <summary>"PREFIX" or "PREFIX.N" with N at most <paramref name="newest"/>.</summary>
        private static bool WithinSeries(string version, string prefix, int newest)
        {
            if (version == prefix) return true;
            if (!version.StartsWith(prefix + ".", StringComparison.Ordinal)) return false;
            string rest = version.Substring(prefix.Length + 1);
            if (rest.Length == 0 || rest.Length > 4) return false;
            int n = 0;
            foreach (char c in rest) {
                if (c < '0' || c > '9') return false;
                n = n * 10 + (c - '0');
            }
            return n <= newest;
        }

        private static ElfPatchResult NotKnown(string why) =>
            new ElfPatchResult(ElfPatchOutcome.NotKnownCase, "not the known case: " + why + "; left as it is");

        private static Section? Single(Section[] sections, uint type, string name)
        {
            Section? found = null;
            foreach (Section s in sections) {
                if (s.Type == type) {
                    if (found != null) throw new ElfFormatException("more than one " + name + " section");
                    found = s;
                }
            }
            return found;
        }

        private static Section StringTable(Section[] sections, uint index, string user)
        {
            if (index == 0 || index >= sections.Length || sections[index].Type != ShtStrtab) {
                throw new ElfFormatException(user + " links to section " + index + ", which is not a string table");
            }
            return sections[index];
        }

        private sealed class Section
        {
            public int Index;
            public uint Type, Link, Info;
            public long Offset, Size, EntrySize;
        }

        private sealed class Need
        {
            public string File = "", Name = "";
            public ushort Flags, Other;
            public long FlagsOffset;
        }

        private sealed class ElfFormatException : Exception
        {
            public ElfFormatException(string message) : base(message) { }
        }

        /// <summary>Little-endian reads that throw <see cref="ElfFormatException"/> instead of reading past the end.</summary>
        private sealed class Reader
        {
            private readonly byte[] _b;

            public Reader(byte[] bytes) => _b = bytes;

            public long Length => _b.Length;

            public void Require(long offset, long size, string what)
            {
                if (offset < 0 || size < 0 || offset > _b.Length || size > _b.Length - offset) {
                    throw new ElfFormatException(what + " (" + size + " bytes at " + offset + ") lie past the end of the file (" + _b.Length + " bytes)");
                }
            }

            public byte U8(long at) => _b[At(at, 1, "a byte")];

            public ushort U16(long at) => (ushort)(_b[At(at, 2, "a 16-bit field")] | (_b[at + 1] << 8));

            public uint U32(long at) =>
                (uint)(_b[At(at, 4, "a 32-bit field")] | (_b[at + 1] << 8) | (_b[at + 2] << 16) | (_b[at + 3] << 24));

            /// <summary><paramref name="at"/>, after <see cref="Require"/> checked that <paramref name="size"/> bytes lie there.</summary>
            private long At(long at, long size, string what)
            {
                Require(at, size, what);
                return at;
            }

            public ulong U64(long at) => U32(at) | ((ulong)U32(at + 4) << 32);

            /// <summary>A 64-bit offset or size, which must fit in the file's length range.</summary>
            public long Offset(long at, string what)
            {
                ulong v = U64(at);
                if (v > (ulong)_b.Length) {
                    throw new ElfFormatException(what + " " + v + " is past the end of the file (" + _b.Length + " bytes)");
                }
                return (long)v;
            }

            /// <summary>The NUL-terminated string at <paramref name="index"/> of a string table, which must end inside it.</summary>
            public string CString(Section table, uint index, string what)
            {
                if (index >= table.Size) {
                    throw new ElfFormatException(what + " index " + index + " is outside its string table");
                }
                long start = table.Offset + index;
                long limit = Math.Min(table.Offset + table.Size, start + MaxStringLength);
                for (long i = start; i < limit; i++) {
                    if (_b[i] == 0) return Encoding.ASCII.GetString(_b, (int)start, (int)(i - start));
                }
                throw new ElfFormatException(what + " at string table index " + index + " is not terminated");
            }
        }
    }

#if !ADAGRAFT_ELF_PATCH_NO_TASK
    /// <summary>The MSBuild task: one message (or warning, for a real surprise) per file; it never fails the build.</summary>
    public sealed class AdaGraftRelaxElfVersionNeeds : Microsoft.Build.Utilities.Task
    {
        /// <summary>The libLibTorchSharp.so copies in the build or publish output.</summary>
        [Microsoft.Build.Framework.Required]
        public Microsoft.Build.Framework.ITaskItem[] Files { get; set; } = new Microsoft.Build.Framework.ITaskItem[0];

        /// <inheritdoc />
        public override bool Execute()
        {
            foreach (Microsoft.Build.Framework.ITaskItem item in Files) {
                string path = item.ItemSpec;
                ElfPatchResult result;
                try {
                    result = ElfVersionPatch.PatchFile(path);
                } catch (Exception e) {
                    result = new ElfPatchResult(ElfPatchOutcome.IoFailure, "unexpected failure (" + e.GetType().Name + ": " + e.Message + "); left as it is");
                }
                if (result.IsWarning) {
                    // The warning's location is the file, so its text does not repeat the path.
                    Log.LogWarning(null, "ADAGRAFT001", null, path, 0, 0, 0, 0, "{0}", "AdaGraft: " + result.Message + ".");
                } else {
                    Log.LogMessage(result.Outcome == ElfPatchOutcome.Patched ? Microsoft.Build.Framework.MessageImportance.High : Microsoft.Build.Framework.MessageImportance.Low,
                        "{0}", "AdaGraft: " + path + ": " + result.Message + ".");
                }
            }
            return true;
        }
    }
#endif
}
