using System;
using System.IO;
using System.Runtime.ExceptionServices;
using System.Runtime.InteropServices;
using System.Threading;

namespace AdaGraft.Rules;

/// <summary>
/// Runs the fused CPU kernels' parallel loops on libtorch's own OpenMP thread team (<c>GOMP_parallel</c> of the
/// libgomp that libtorch loaded), not on .NET thread-pool threads.
/// </summary>
/// <remarks>
/// After each parallel libtorch operation its OpenMP threads keep spinning for a while (libgomp's spin count), waiting
/// for the next one. A step that runs right after a backward pass on other threads competes with them for the cores
/// (measured: +3.1–3.2 ms on a 10.7 ms fused step of 10 × 1M parameters on 2 cores); on libtorch's team the spinning
/// threads take the work at once. Linux only, and only when libgomp is already loaded in the process (libtorch's CPU
/// and CUDA builds for Linux use it); otherwise, or with <see cref="CpuSwitches.OpenMpRunner"/> off (<c>ADAGRAFT_CPU_PARALLEL=dotnet</c>),
/// <see cref="FusedCpu.Run"/> uses <c>Parallel.For</c>. Work items are claimed one at a time from a shared counter,
/// so which thread runs an item never changes a result.
/// </remarks>
internal static unsafe class OpenMpRunner
{
    private static readonly object Gate = new();
    private static int _state; // 0: not looked for yet, 1: found, -1: not available
    private static delegate* unmanaged<delegate* unmanaged<void*, void>, void*, uint, uint, void> _parallel;

    /// <summary>How many parallel loops ran on the OpenMP team (diagnostics and tests).</summary>
    internal static long Loops;

    /// <summary>The libgomp in use, if found (diagnostics).</summary>
    internal static string? Library { get; private set; }

    /// <summary>
    /// Runs <paramref name="body"/> for items 0 … <paramref name="count"/> − 1 on up to <paramref name="threads"/>
    /// OpenMP threads; false (nothing run) when libtorch's OpenMP is not available.
    /// </summary>
    public static bool TryRun(int count, int threads, Action<int> body)
    {
        if (!CpuSwitches.OpenMpRunner || !Available()) return false;
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
            _state = -1;
            try {
                if (!OperatingSystem.IsLinux()) return false;
                // libtorch (and so its libgomp) must be loaded before the maps are read: a first call may come before
                // any other torch call (seen: a filtered test run marked the team unavailable for the whole process).
                _ = TorchSharp.torch.get_num_threads();
                string? path = null;
                foreach (var line in File.ReadLines("/proc/self/maps")) {
                    int slash = line.IndexOf('/', StringComparison.Ordinal);
                    if (slash < 0) continue;
                    var file = line[slash..];
                    if (Path.GetFileName(file).StartsWith("libgomp", StringComparison.Ordinal)) {
                        path = file;
                        break;
                    }
                }
                // Loading by the path of the mapped file returns the library already loaded, not a second copy.
                if (path is null || !NativeLibrary.TryLoad(path, out var lib)) return false;
                if (!NativeLibrary.TryGetExport(lib, "GOMP_parallel", out var parallel)) return false;
                _parallel = (delegate* unmanaged<delegate* unmanaged<void*, void>, void*, uint, uint, void>)parallel;
                Library = path;
                Volatile.Write(ref _state, 1);
            } catch (IOException) {
            } catch (UnauthorizedAccessException) {
            }
            return _state > 0;
        }
    }
}
