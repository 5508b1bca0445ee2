using System.Runtime.InteropServices;
using AdaGraft.Rules;

namespace AdaGraft.Tests.Fused;

/// <summary>
/// How <see cref="OpenMpRunner"/> identifies libtorch's OpenMP runtime: through <c>libtorch_cpu.so</c>'s own
/// <c>DT_NEEDED</c> entries, never by the first libgomp in the process's mappings.
/// </summary>
public class OpenMpResolutionTests
{
    private const string Dir = "/pkg/libtorch/native";
    private const string TorchCpu = Dir + "/libtorch_cpu.so";
    private const string TorchGomp = Dir + "/libgomp-98b21ff3.so.1";
    private const string ForeignGomp = "/usr/lib/x86_64-linux-gnu/libgomp.so.1";

    /// <summary>A process where another libgomp was mapped first (the old lookup took the first libgomp mapping).</summary>
    private static readonly List<OpenMpRunner.Mapping> ForeignFirst = OpenMpRunner.Maps(new[] {
        "7f0000000000-7f0000040000 r-xp 00000000 08:01 101 " + ForeignGomp,
        "7f0000100000-7f0000200000 rw-p 00000000 00:00 0 ",
        "7f1000000000-7f1015000000 r-xp 00000000 08:01 202 " + TorchCpu,
        "7f2000000000-7f2000040000 r-xp 00000000 08:01 303 " + TorchGomp,
        "7ffc00000000-7ffc00021000 rw-p 00000000 00:00 0                          [stack]",
    });

    private const ulong ForeignAddress = 0x7f0000001230, TorchAddress = 0x7f2000001230;

    private static IReadOnlyList<string>? TorchNeeds(string path)
    {
        path.Should().Be(TorchCpu, "only libtorch_cpu.so's dynamic section is read");
        return new[] { "libc10.so", "libdl.so.2", "libgomp-98b21ff3.so.1", "libstdc++.so.6", "libc.so.6" };
    }

    /// <summary>The loader's view: each soname's GOMP_parallel, as dlopen(RTLD_NOLOAD) + dlsym would give it.</summary>
    private static ulong Loader(string soname) => soname switch {
        "libgomp-98b21ff3.so.1" => TorchAddress,
        "libgomp.so.1" => ForeignAddress,
        _ => 0,
    };

    [Fact]
    public void AForeignLibgompMappedFirstIsNotPicked()
    {
        ForeignFirst.First(m => Path.GetFileName(m.Path).StartsWith("libgomp", StringComparison.Ordinal)).Path
            .Should().Be(ForeignGomp, "the old lookup (first libgomp mapping) would have taken this one");
        var found = OpenMpRunner.Resolve(ForeignFirst, TorchNeeds, Loader, globalSymbol: 0);
        found.Reason.Should().BeNull();
        found.Soname.Should().Be("libgomp-98b21ff3.so.1");
        found.Library.Should().Be(TorchGomp);
        found.Address.Should().Be(TorchAddress);
    }

    [Fact]
    public void AGlobalGompParallelOfTheSameLibraryIsFine() =>
        OpenMpRunner.Resolve(ForeignFirst, TorchNeeds, Loader, globalSymbol: TorchAddress).Library.Should().Be(TorchGomp);

    public static TheoryData<string, string> Unidentified() => new() {
        { "foreign global", "another GOMP_parallel" },
        { "resolved into the foreign file", "neither named" },
        { "not loaded", "is not loaded" },
        { "outside every mapping", "lies in no mapped file" },
        { "unreadable libtorch_cpu.so", "cannot read the dynamic section" },
        { "Intel OpenMP", "libiomp5.so" },
        { "no OpenMP", "needs no libgomp" },
        { "two libgomps", "two OpenMP runtimes" },
        { "two libtorch_cpu.so", "two libtorch_cpu.so" },
        { "no libtorch_cpu.so", "libtorch_cpu.so is not mapped" },
    };

    /// <summary>Anything that does not identify libtorch's libgomp exactly leaves the OpenMP runner unused, with a reason.</summary>
    [Theory]
    [MemberData(nameof(Unidentified))]
    public void AnythingAmbiguousIsNotIdentified(string situation, string reason)
    {
        var maps = ForeignFirst;
        Func<string, IReadOnlyList<string>?> needed = TorchNeeds;
        Func<string, ulong> loader = Loader;
        ulong global = 0;
        switch (situation) {
            case "foreign global": global = ForeignAddress; break;
            case "resolved into the foreign file": loader = _ => ForeignAddress; break;
            case "not loaded": loader = _ => 0; break;
            case "outside every mapping": loader = _ => 0x10; break;
            case "unreadable libtorch_cpu.so": needed = _ => null; break;
            case "Intel OpenMP": needed = _ => new[] { "libc10.so", "libiomp5.so", "libgomp-98b21ff3.so.1" }; break;
            case "no OpenMP": needed = _ => new[] { "libc10.so", "libc.so.6" }; break;
            case "two libgomps": needed = _ => new[] { "libgomp-98b21ff3.so.1", "libgomp.so.1" }; break;
            case "two libtorch_cpu.so":
                maps = ForeignFirst.Append(new OpenMpRunner.Mapping(0x7f3000000000, 0x7f3000001000, "/other/libtorch_cpu.so")).ToList();
                break;
            case "no libtorch_cpu.so": maps = ForeignFirst.Where(m => !m.Path.EndsWith("libtorch_cpu.so", StringComparison.Ordinal)).ToList(); break;
            default: throw new ArgumentOutOfRangeException(nameof(situation), situation, null);
        }
        var found = OpenMpRunner.Resolve(maps, needed, loader, global);
        found.Library.Should().BeNull();
        found.Address.Should().Be(0);
        found.Reason.Should().Contain(reason);
    }

    [Fact]
    public void MapsKeepsFileMappingsWithTheirRanges()
    {
        var maps = OpenMpRunner.Maps(new[] {
            "55d4c3a00000-55d4c3a21000 rw-p 00000000 00:00 0                          [heap]",
            "7f2000000000-7f2000040000 r-xp 00002000 08:01 303                        /a dir/libgomp.so.1",
            "not a maps line /x",
        });
        maps.Should().Equal(new OpenMpRunner.Mapping(0x7f2000000000, 0x7f2000040000, "/a dir/libgomp.so.1"));
    }

    /// <summary>
    /// In this process: the GOMP_parallel in use lies in the file that <c>libtorch_cpu.so</c>'s DT_NEEDED names, found
    /// here independently (the mapped libtorch_cpu.so, its dynamic section, the mapping holding the address).
    /// </summary>
    [Fact]
    public void TheRuntimeInUseIsTheOneLibtorchCpuNeeds()
    {
        Assert.SkipUnless(OperatingSystem.IsLinux(), "libtorch's OpenMP runtime is looked for on Linux only");
        _ = torch.get_num_threads();
        OpenMpRunner.Identified.Should().BeTrue(OpenMpRunner.Reason);

        var maps = File.ReadAllLines("/proc/self/maps").Where(l => l.Contains('/', StringComparison.Ordinal))
            .Select(l => (Range: l[..l.IndexOf(' ', StringComparison.Ordinal)], Path: l[l.IndexOf('/', StringComparison.Ordinal)..])).ToList();
        var torchCpu = maps.Select(m => m.Path).Where(p => Path.GetFileName(p) == "libtorch_cpu.so").Distinct().Should().ContainSingle().Subject;
        var needed = ElfNeeded.ParseFile(torchCpu);
        needed.Should().NotBeNull().And.Contain("libc10.so", "libtorch_cpu.so links against libc10.so");
        var soname = needed!.Where(n => n.StartsWith("libgomp", StringComparison.Ordinal)).Should().ContainSingle().Subject;

        var holder = maps.Where(m => {
            var bounds = m.Range.Split('-');
            ulong start = Convert.ToUInt64(bounds[0], 16), end = Convert.ToUInt64(bounds[1], 16);
            return OpenMpRunner.Address >= start && OpenMpRunner.Address < end;
        }).Should().ContainSingle().Subject;
        Path.GetFileName(holder.Path).Should().Be(soname);
        OpenMpRunner.Soname.Should().Be(soname);
        OpenMpRunner.Library.Should().Be(holder.Path);
    }

    /// <summary>
    /// A second, foreign libgomp loaded into this process (the system's, by path: a separate copy) is mapped and
    /// exports GOMP_parallel too; looking again still finds libtorch's copy.
    /// </summary>
    [Fact]
    public void AForeignLibgompLoadedIntoThisProcessIsNotPicked()
    {
        const string System = "/usr/lib/x86_64-linux-gnu/libgomp.so.1";
        Assert.SkipUnless(OperatingSystem.IsLinux() && File.Exists(System), "needs the system's libgomp (Debian/Ubuntu x86-64 path)");
        _ = torch.get_num_threads();
        var before = OpenMpRunner.Look();
        before.Reason.Should().BeNull();
        var foreign = NativeLibrary.Load(System);
        ulong foreignParallel = (ulong)NativeLibrary.GetExport(foreign, "GOMP_parallel");
        var holder = OpenMpRunner.Maps(File.ReadLines("/proc/self/maps")).Where(m => foreignParallel >= m.Start && foreignParallel < m.End)
            .Should().ContainSingle("the foreign copy is mapped").Subject;
        holder.Path.Should().NotBe(before.Library, "it is a second copy, not libtorch's");

        var after = OpenMpRunner.Look();
        after.Reason.Should().BeNull();
        after.Library.Should().Be(before.Library);
        after.Address.Should().Be(before.Address);
    }
}
