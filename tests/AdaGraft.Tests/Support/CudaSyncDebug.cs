using System.Runtime.InteropServices;

namespace AdaGraft.Tests.Support;

/// <summary>
/// libtorch's own synchronisation detector, PyTorch's <c>torch.cuda.set_sync_debug_mode("error")</c>, reached without
/// Python: <c>c10::cuda::warning_state()</c> returns the process-wide <c>WarningState</c>, whose only field is the
/// <c>SyncDebugMode</c> (0 off, 1 warn, 2 error). In error mode every call that blocks the host on the GPU (a blocking
/// copy such as <c>.cpu()</c> or a CPU tensor copied to the device, <c>.item()</c>, <c>nonzero</c>, a stream
/// synchronise) raises <c>c10::Error</c>, which TorchSharp turns into an <see cref="ExternalException"/> at the
/// managed call that caused it.
/// </summary>
public static class CudaSyncDebug
{
    private const string Function = "_ZN3c104cuda13warning_stateEv";
    private const string StaticLocal = "_ZZN3c104cuda13warning_stateEvE14warning_state_";
    private static readonly Lazy<(IntPtr mode, string why)> Mode = new(Find);

    /// <summary>True when the detector was found in the loaded CUDA libraries; otherwise <paramref name="why"/> says why not.</summary>
    public static bool Available(out string why)
    {
        (IntPtr mode, why) = Mode.Value;
        return mode != IntPtr.Zero;
    }

    /// <summary>Error mode until disposed: a synchronising CUDA call inside raises.</summary>
    public static IDisposable RaiseOnSync()
    {
        var (mode, why) = Mode.Value;
        if (mode == IntPtr.Zero) throw new InvalidOperationException(why);
        Marshal.WriteInt32(mode, 2);
        return new Off(mode);
    }

    private sealed class Off(IntPtr mode) : IDisposable
    {
        public void Dispose() => Marshal.WriteInt32(mode, 0);
    }

    private static (IntPtr, string) Find()
    {
        var tried = new List<string>();
        foreach (var name in new[] { "libc10_cuda.so", "libtorch_cuda.so" }) {
            if (!NativeLibrary.TryLoad(name, out var lib)) {
                tried.Add($"{name} not loadable");
                continue;
            }
            if (NativeLibrary.TryGetExport(lib, Function, out var fn)) {
                var get = Marshal.GetDelegateForFunctionPointer<GetState>(fn);
                return (get(), "");
            }
            if (NativeLibrary.TryGetExport(lib, StaticLocal, out var state)) return (state, "");
            tried.Add($"{name} exports neither {Function} nor {StaticLocal}");
        }
        return (IntPtr.Zero, "libtorch's CUDA sync-debug state was not found: " + string.Join("; ", tried));
    }

    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    private delegate IntPtr GetState();
}
