using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using System.Runtime.ExceptionServices;
using System.Runtime.InteropServices;
using System.Text;
using System.Threading;

namespace AdaGraft.Rules;

/// <summary>
/// Runs the fused CPU kernels' parallel loops on libtorch's own OpenMP thread team (<c>GOMP_parallel</c> of the
/// libgomp that libtorch's CPU library links against), not on .NET thread-pool threads.
/// </summary>
/// <remarks>
/// <para>After each parallel libtorch operation its OpenMP threads keep spinning for a while (libgomp's spin count),
/// waiting for the next one. A step that runs right after a backward pass on other threads competes with them for the
/// cores (measured: +3.1–3.2 ms on a 10.7 ms fused step of 10 × 1M parameters on 2 cores); on libtorch's team the
/// spinning threads take the work at once. Work items are claimed one at a time from a shared counter, so which
/// thread runs an item never changes a result.</para>
/// <para>The runtime is identified exactly, or not used (see <see cref="Resolve"/>): the loaded
/// <c>libtorch_cpu.so</c> (one mapping in <c>/proc/self/maps</c>) is read from disk for its <c>DT_NEEDED</c> entries;
/// exactly one of them must be a libgomp (none, several, or Intel's/LLVM's OpenMP: not identified); that soname is
/// opened with <c>RTLD_NOLOAD</c>, which loads nothing and returns the object the loader bound libtorch's
/// <c>DT_NEEDED</c> to (it matches loaded objects by the name they were loaded under); its <c>GOMP_parallel</c> must
/// lie in a mapping whose file is named by that soname or sits beside <c>libtorch_cpu.so</c>; and no other
/// <c>GOMP_parallel</c> may be visible in the global scope (it would interpose on libtorch's own calls). Otherwise
/// (and off Linux, or with <see cref="CpuSwitches.OpenMpRunner"/> off: <c>ADAGRAFT_CPU_PARALLEL=dotnet</c>)
/// <see cref="FusedCpu.Run"/> uses <c>Parallel.For</c>, and <see cref="Reason"/> says why.</para>
/// </remarks>
internal static unsafe class OpenMpRunner
{
    private static readonly object Gate = new();
    private static int _state; // 0: not looked for yet, 1: found, -1: not available
    private static delegate* unmanaged<delegate* unmanaged<void*, void>, void*, uint, uint, void> _parallel;

    /// <summary>How many parallel loops ran on the OpenMP team (diagnostics and tests).</summary>
    internal static long Loops;

    /// <summary>The path of the libgomp in use (the file mapped where its <c>GOMP_parallel</c> lies), if identified (diagnostics).</summary>
    internal static string? Library { get; private set; }

    /// <summary>The soname of that libgomp, as <c>libtorch_cpu.so</c>'s <c>DT_NEEDED</c> names it (diagnostics).</summary>
    internal static string? Soname { get; private set; }

    /// <summary>The address of the <c>GOMP_parallel</c> in use, zero if none (diagnostics and tests).</summary>
    internal static ulong Address { get; private set; }

    /// <summary>Why libtorch's OpenMP runtime is not used, when it was looked for and not identified (diagnostics).</summary>
    internal static string? Reason { get; private set; }

    /// <summary>Whether the OpenMP team would be used: the switch is on and the runtime was identified (looks it up once).</summary>
    internal static bool IsAvailable => CpuSwitches.OpenMpRunner && Identified;

    /// <summary>Whether libtorch's OpenMP runtime was identified (looks it up once, whatever the switch says).</summary>
    internal static bool Identified => Available();

    /// <summary>
    /// Runs <paramref name="body"/> for items 0 … <paramref name="count"/> − 1 on up to <paramref name="threads"/>
    /// OpenMP threads; false (nothing run) when libtorch's OpenMP is not available or switched off.
    /// </summary>
    public static bool TryRun(int count, int threads, Action<int> body)
    {
        if (!IsAvailable) return false;
        var job = new Job(body, count);
        var handle = GCHandle.Alloc(job);
        try {
            _parallel(&Worker, (void*)GCHandle.ToIntPtr(handle), (uint)threads, 0);
        } finally {
            handle.Free();
        }
        Interlocked.Increment(ref Loops);
        if (job.Error is not null) ExceptionDispatchInfo.Capture(job.Error).Throw();
        return true;
    }

    private sealed class Job(Action<int> body, int count)
    {
        public readonly Action<int> Body = body;
        public readonly int Count = count;
        public int Next;
        public Exception? Error;
    }

    [UnmanagedCallersOnly]
    private static void Worker(void* data)
    {
        var job = (Job)GCHandle.FromIntPtr((IntPtr)data).Target!;
        try {
            int j;
            while ((j = Interlocked.Increment(ref job.Next) - 1) < job.Count) job.Body(j);
        } catch (Exception e) {
            Interlocked.CompareExchange(ref job.Error, e, null);
            // Let the other threads stop early.
            Interlocked.Exchange(ref job.Next, job.Count);
        }
    }

    private static bool Available()
    {
        // Published with a release write after _parallel is set, read with an acquire read (weakly ordered CPUs).
        int state = Volatile.Read(ref _state);
        if (state != 0) return state > 0;
        lock (Gate) {
            if (_state != 0) return _state > 0;
            var found = Look();
            if (found.Reason is not null) {
                Reason = found.Reason;
                Volatile.Write(ref _state, -1);
                return false;
            }
            _parallel = (delegate* unmanaged<delegate* unmanaged<void*, void>, void*, uint, uint, void>)found.Address;
            Library = found.Library;
            Soname = found.Soname;
            Address = found.Address;
            Volatile.Write(ref _state, 1);
            return true;
        }
    }

    /// <summary>What <see cref="Resolve"/> found: the soname, the mapped file and <c>GOMP_parallel</c>; or why not.</summary>
    internal readonly record struct Resolution(string? Soname, string? Library, ulong Address, string? Reason)
    {
        public static Resolution No(string reason) => new(null, null, 0, reason);
    }

    /// <summary>One file mapping of <c>/proc/self/maps</c>: addresses [Start, End) and the file's path.</summary>
    internal readonly record struct Mapping(ulong Start, ulong End, string Path);

    /// <summary>Looks for libtorch's OpenMP runtime in this process now (<see cref="Available"/> does it once and keeps the result).</summary>
    internal static Resolution Look()
    {
        if (!OperatingSystem.IsLinux()) return Resolution.No("not Linux: libtorch's OpenMP runtime is looked for on Linux only");
        try {
            // Make sure libtorch (and so libtorch_cpu.so and its OpenMP runtime) is loaded before reading the maps.
            _ = torch.get_num_threads();
            var maps = Maps(File.ReadLines("/proc/self/maps"));
            if (!Dl.TryCreate(out var dl, out var why)) return Resolution.No(why);
            return Resolve(maps, ElfNeeded.ParseFile, dl.NoLoadSymbol, dl.GlobalSymbol);
        } catch (IOException e) {
            return Resolution.No($"cannot read /proc/self/maps: {e.Message}");
        } catch (UnauthorizedAccessException e) {
            return Resolution.No($"cannot read /proc/self/maps: {e.Message}");
        } catch (DllNotFoundException e) {
            return Resolution.No($"libtorch is not loaded: {e.Message}");
        } catch (TypeInitializationException e) {
            return Resolution.No($"libtorch is not loaded: {e.InnerException?.Message ?? e.Message}");
        }
    }

    /// <summary>
    /// Identifies libtorch's OpenMP runtime, or says why not. <paramref name="needed"/> reads a file's DT_NEEDED
    /// sonames (null: unreadable); <paramref name="noLoadSymbol"/> gives <c>GOMP_parallel</c> of the already loaded
    /// object registered under a soname (<c>dlopen(RTLD_NOLOAD)</c>, <c>dlsym</c>; 0: none);
    /// <paramref name="globalSymbol"/> is <c>GOMP_parallel</c> in the global scope (0: none).
    /// </summary>
    internal static Resolution Resolve(IReadOnlyList<Mapping> maps, Func<string, IReadOnlyList<string>?> needed,
        Func<string, ulong> noLoadSymbol, ulong globalSymbol)
    {
        string? torchCpu = null;
        foreach (var m in maps) {
            if (Path.GetFileName(m.Path) != "libtorch_cpu.so") continue;
            if (torchCpu is not null && torchCpu != m.Path) return Resolution.No($"two libtorch_cpu.so are mapped: {torchCpu}, {m.Path}");
            torchCpu = m.Path;
        }
        if (torchCpu is null) return Resolution.No("libtorch_cpu.so is not mapped");

        if (needed(torchCpu) is not { } sonames) return Resolution.No($"cannot read the dynamic section of {torchCpu}");
        var soname = OpenMpOf(sonames, out var why);
        if (soname is null) return Resolution.No(why!);

        ulong address = noLoadSymbol(soname);
        if (address == 0) return Resolution.No($"{soname} (needed by {torchCpu}) is not loaded or has no GOMP_parallel");
        Mapping? holder = null;
        foreach (var m in maps) {
            if (address >= m.Start && address < m.End) {
                holder = m;
                break;
            }
        }
        if (holder is not { } found) return Resolution.No($"GOMP_parallel of {soname} lies in no mapped file");
        bool named = Path.GetFileName(found.Path) == soname;
        bool beside = Path.GetDirectoryName(found.Path) == Path.GetDirectoryName(torchCpu);
        if (!named && !beside)
            return Resolution.No($"GOMP_parallel of {soname} lies in {found.Path}, neither named {soname} nor beside {torchCpu}");
        if (globalSymbol != 0 && globalSymbol != address)
            return Resolution.No($"another GOMP_parallel (at 0x{globalSymbol:x}) is in the global scope and would take libtorch's own calls");
        return new Resolution(soname, found.Path, address, null);
    }

    /// <summary>
    /// The one GNU OpenMP runtime among <paramref name="needed"/> (a soname starting with <c>libgomp</c>), or null with
    /// <paramref name="reason"/>: none, several, or an Intel or LLVM OpenMP runtime among them.
    /// </summary>
    internal static string? OpenMpOf(IReadOnlyList<string> needed, out string? reason)
    {
        string? gnu = null;
        foreach (var name in needed) {
            var file = Path.GetFileName(name);
            if (file.StartsWith("libiomp", StringComparison.Ordinal) || file.StartsWith("libomp", StringComparison.Ordinal)) {
                reason = $"libtorch_cpu.so needs {name}, not a libgomp";
                return null;
            }
            if (!file.StartsWith("libgomp", StringComparison.Ordinal)) continue;
            if (gnu is not null && gnu != name) {
                reason = $"libtorch_cpu.so needs two OpenMP runtimes: {gnu}, {name}";
                return null;
            }
            gnu = name;
        }
        reason = gnu is null ? "libtorch_cpu.so needs no libgomp" : null;
        return gnu;
    }

    /// <summary>The file mappings (path starting with '/') of <c>/proc/self/maps</c> lines; other lines are skipped.</summary>
    internal static List<Mapping> Maps(IEnumerable<string> lines)
    {
        var maps = new List<Mapping>();
        foreach (var line in lines) {
            int slash = line.IndexOf('/', StringComparison.Ordinal);
            int dash = line.IndexOf('-', StringComparison.Ordinal);
            int space = line.IndexOf(' ', StringComparison.Ordinal);
            if (slash < 0 || dash <= 0 || space <= dash) continue;
            if (!ulong.TryParse(line.AsSpan(0, dash), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var start)
                || !ulong.TryParse(line.AsSpan(dash + 1, space - dash - 1), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var end))
                continue;
            maps.Add(new Mapping(start, end, line[slash..]));
        }
        return maps;
    }

    /// <summary>glibc's dynamic-linking calls (in libc.so.6 since glibc 2.34, in libdl.so.2 before).</summary>
    private sealed class Dl
    {
        private const int RtldLazy = 0x1, RtldNoLoad = 0x4;
        private readonly delegate* unmanaged<byte*, int, void*> _dlopen;
        private readonly delegate* unmanaged<void*, byte*, void*> _dlsym;

        private Dl(IntPtr dlopen, IntPtr dlsym)
        {
            _dlopen = (delegate* unmanaged<byte*, int, void*>)dlopen;
            _dlsym = (delegate* unmanaged<void*, byte*, void*>)dlsym;
        }

        public static bool TryCreate([NotNullWhen(true)] out Dl? dl, [NotNullWhen(false)] out string? reason)
        {
            foreach (var name in new[] { "libc.so.6", "libdl.so.2" }) {
                if (NativeLibrary.TryLoad(name, out var lib) && NativeLibrary.TryGetExport(lib, "dlopen", out var open)
                    && NativeLibrary.TryGetExport(lib, "dlsym", out var sym)) {
                    dl = new Dl(open, sym);
                    reason = null;
                    return true;
                }
            }
            dl = null;
            reason = "dlopen/dlsym not found in libc.so.6 or libdl.so.2 (not glibc)";
            return false;
        }

        /// <summary>GOMP_parallel of the loaded object registered under <paramref name="soname"/>; loads nothing (RTLD_NOLOAD).</summary>
        public ulong NoLoadSymbol(string soname)
        {
            var name = Encoding.UTF8.GetBytes(soname + "\0");
            void* handle;
            fixed (byte* p = name) handle = _dlopen(p, RtldLazy | RtldNoLoad);
            // The handle is kept: one more reference to a library libtorch keeps loaded anyway.
            return handle == null ? 0 : Symbol(handle);
        }

        /// <summary>GOMP_parallel in the global scope (RTLD_DEFAULT), as a library without its own binding would see it.</summary>
        public ulong GlobalSymbol => Symbol(null);

        private ulong Symbol(void* handle)
        {
            fixed (byte* p = "GOMP_parallel\0"u8) return (ulong)_dlsym(handle, p);
        }
    }
}
