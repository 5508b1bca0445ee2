using System.Runtime.InteropServices;

namespace AdaGraft.Rules;

/// <summary>
/// Reads the metadata a step checks for every tensor (dtype, device, sparsity, contiguity, shape, element count, data
/// address) through TorchSharp's own native exports (<c>THSTensor_*</c> of <c>libLibTorchSharp.so</c>), called
/// directly without a GC transition: a few nanoseconds a read instead of the 20–50 ns of TorchSharp's managed
/// properties (each a P/Invoke with a GC transition, several followed by a second call that checks for errors). A step
/// over 1,000 tensors makes some 40,000 such reads.
/// </summary>
/// <remarks>
/// <para>A TorchSharp handle is the <c>at::Tensor*</c> these exports take, and they are the functions TorchSharp's
/// properties call, so the answers are the same. They are looked up in the <c>libLibTorchSharp.so</c> this process has
/// mapped (Linux only); when any is missing, or a test turns <see cref="Available"/> off, every read goes through
/// TorchSharp's properties instead.</para>
/// <para>The functions read fields of the tensor and never block or call back, which is what skipping the GC
/// transition requires. <see cref="Data"/> is asked only of dense tensors (<c>data_ptr</c> throws, and the export
/// records the error, for tensors without storage).</para>
/// </remarks>
internal static unsafe class NativeTensor
{
    private static readonly delegate* unmanaged[SuppressGCTransition]<IntPtr, sbyte> s_type;
    private static readonly delegate* unmanaged[SuppressGCTransition]<IntPtr, int> s_deviceType, s_deviceIndex;
    private static readonly delegate* unmanaged[SuppressGCTransition]<IntPtr, byte> s_isSparse, s_isContiguous;
    private static readonly delegate* unmanaged[SuppressGCTransition]<IntPtr, long> s_dim, s_numel;
    private static readonly delegate* unmanaged[SuppressGCTransition]<IntPtr, long, long> s_size;
    private static readonly delegate* unmanaged[SuppressGCTransition]<IntPtr, IntPtr> s_data;
    private static readonly delegate* unmanaged[SuppressGCTransition]<IntPtr, long> s_elementSize;
    // These two allocate or free (a heap at::Tensor), so they keep the GC transition.
    private static readonly delegate* unmanaged<IntPtr, IntPtr> s_grad;
    private static readonly delegate* unmanaged<IntPtr, void> s_dispose;

    /// <summary>Why <see cref="Available"/> was false at start (null when the exports were found).</summary>
    internal static string? Reason { get; }

    /// <summary>True when the exports were found (tests may turn it off to exercise TorchSharp's properties).</summary>
    internal static bool Available { get; set; }

    static NativeTensor()
    {
        var names = new[] {
            "type", "device_type", "device_index", "is_sparse", "is_contiguous", "ndimension", "numel", "size", "data",
            "element_size", "grad", "dispose",
        };
        if (MappedLibrary.Exports("libLibTorchSharp.so", Array.ConvertAll(names, n => "THSTensor_" + n), out var why) is not { } found) {
            Reason = why;
            return;
        }
        s_type = (delegate* unmanaged[SuppressGCTransition]<IntPtr, sbyte>)found[0];
        s_deviceType = (delegate* unmanaged[SuppressGCTransition]<IntPtr, int>)found[1];
        s_deviceIndex = (delegate* unmanaged[SuppressGCTransition]<IntPtr, int>)found[2];
        s_isSparse = (delegate* unmanaged[SuppressGCTransition]<IntPtr, byte>)found[3];
        s_isContiguous = (delegate* unmanaged[SuppressGCTransition]<IntPtr, byte>)found[4];
        s_dim = (delegate* unmanaged[SuppressGCTransition]<IntPtr, long>)found[5];
        s_numel = (delegate* unmanaged[SuppressGCTransition]<IntPtr, long>)found[6];
        s_size = (delegate* unmanaged[SuppressGCTransition]<IntPtr, long, long>)found[7];
        s_data = (delegate* unmanaged[SuppressGCTransition]<IntPtr, IntPtr>)found[8];
        s_elementSize = (delegate* unmanaged[SuppressGCTransition]<IntPtr, long>)found[9];
        s_grad = (delegate* unmanaged<IntPtr, IntPtr>)found[10];
        s_dispose = (delegate* unmanaged<IntPtr, void>)found[11];
        Available = true;
    }

    /// <summary><c>t.dtype</c>.</summary>
    internal static ScalarType Dtype(TensorRef t) => Available ? (ScalarType)s_type(t.Handle) : t.Managed!.dtype;

    /// <summary><c>t.device_type</c>.</summary>
    internal static DeviceType DeviceType(TensorRef t) => Available ? (DeviceType)s_deviceType(t.Handle) : t.Managed!.device_type;

    /// <summary><c>t.device_index</c>.</summary>
    internal static int DeviceIndex(TensorRef t) => Available ? s_deviceIndex(t.Handle) : t.Managed!.device_index;

    /// <summary><c>t.is_sparse</c>.</summary>
    internal static bool IsSparse(TensorRef t) => Available ? s_isSparse(t.Handle) != 0 : t.Managed!.is_sparse;

    /// <summary>
    /// <c>t.is_contiguous()</c>; false for a sparse tensor without asking libtorch (whose sparse tensors may refuse the
    /// question, and the export would then record an error for TorchSharp's next check).
    /// </summary>
    internal static bool IsContiguous(TensorRef t) =>
        Available ? s_isSparse(t.Handle) == 0 && s_isContiguous(t.Handle) != 0 : !t.Managed!.is_sparse && t.Managed.is_contiguous();

    /// <summary><c>t.dim()</c>.</summary>
    internal static long Dim(TensorRef t) => Available ? s_dim(t.Handle) : t.Managed!.dim();

    /// <summary><c>t.size(d)</c> for 0 ≤ <paramref name="d"/> &lt; <c>t.dim()</c>.</summary>
    internal static long Size(TensorRef t, int d) => Available ? s_size(t.Handle, d) : t.Managed!.size(d);

    /// <summary><c>t.numel()</c>.</summary>
    internal static long Numel(TensorRef t) => Available ? s_numel(t.Handle) : t.Managed!.numel();

    /// <summary>The shape (allocates; for messages).</summary>
    internal static long[] Shape(TensorRef t)
    {
        var shape = new long[Dim(t)];
        for (int d = 0; d < shape.Length; d++) shape[d] = Size(t, d);
        return shape;
    }

    /// <summary>The device (for messages).</summary>
    internal static Device Device(TensorRef t) => new(DeviceType(t), DeviceIndex(t));

    /// <summary>
    /// <paramref name="p"/>'s gradient as a new native handle that the caller owns and frees with
    /// <see cref="Free"/> (or hands to <c>Tensor.UnsafeCreateTensor</c>), without a managed <see cref="Tensor"/>
    /// (an allocation with a finalizer, registered on the current dispose scope); zero when it has none. Only when
    /// <see cref="Available"/>.
    /// </summary>
    internal static IntPtr Grad(Tensor p) => s_grad(p.Handle);

    /// <summary>Frees a handle from <see cref="Grad"/>.</summary>
    internal static void Free(IntPtr handle) => s_dispose(handle);

    /// <summary><c>t.ElementSize</c>, from the dtype for the floating-point types.</summary>
    internal static long ElementSize(TensorRef t) => Dtype(t) switch {
        ScalarType.Float32 => 4,
        ScalarType.Float64 => 8,
        ScalarType.Float16 or ScalarType.BFloat16 => 2,
        _ => Available ? s_elementSize(t.Handle) : t.Managed!.ElementSize,
    };

    /// <summary>
    /// The address of the first element of a dense, contiguous CPU tensor with at least one element (callers check
    /// those first); through TorchSharp, its <c>bytes</c> span, which checks them again.
    /// </summary>
    internal static IntPtr Data(TensorRef t)
    {
        if (Available) return s_data(t.Handle);
        var m = t.Managed!;
        if (m.numel() * m.ElementSize <= int.MaxValue) {
            fixed (byte* p = m.bytes) return (IntPtr)p;
        }
        using var flat = m.view(-1);
        using var first = flat.narrow(0, 0, 1);
        fixed (byte* p = first.bytes) return (IntPtr)p;
    }
}

/// <summary>
/// A tensor as the metadata reads take it: its native handle, and the managed tensor where there is one (TorchSharp's
/// properties need it when the exports are not <see cref="NativeTensor.Available"/>). A gradient read as a bare handle
/// (<see cref="NativeTensor.Grad"/>) has none.
/// </summary>
internal readonly struct TensorRef
{
    public readonly IntPtr Handle;
    public readonly Tensor? Managed;

    public TensorRef(IntPtr handle, Tensor? managed)
    {
        Handle = handle;
        Managed = managed;
    }

    public static implicit operator TensorRef(Tensor t) => new(t.Handle, t);
}

/// <summary>A native library this process has already mapped, found by file name in <c>/proc/self/maps</c> (Linux).</summary>
internal static class MappedLibrary
{
    /// <summary>
    /// The addresses of <paramref name="names"/> in the mapped <paramref name="fileName"/> (see <see cref="Open"/>), or
    /// null with the reason in <paramref name="reason"/> (the library or one of the names not found).
    /// </summary>
    internal static IntPtr[]? Exports(string fileName, string[] names, out string? reason)
    {
        if (Open(fileName, out var library, out reason) is not string path) return null;
        var found = new IntPtr[names.Length];
        for (int i = 0; i < names.Length; i++) {
            if (NativeLibrary.TryGetExport(library, names[i], out found[i])) continue;
            reason = $"{path} does not export {names[i]}";
            return null;
        }
        return found;
    }

    /// <summary>
    /// Opens (takes another reference to) the one mapped file named <paramref name="fileName"/> after loading libtorch;
    /// returns its path, or null with the reason in <paramref name="reason"/> (not Linux, not mapped, two different
    /// copies mapped, unreadable maps).
    /// </summary>
    private static string? Open(string fileName, out IntPtr library, out string? reason)
    {
        library = IntPtr.Zero;
        reason = null;
        if (!OperatingSystem.IsLinux()) {
            reason = "not Linux";
            return null;
        }
        try {
            _ = torch.get_num_threads(); // loads libtorch and TorchSharp's native library
            string? path = null;
            foreach (var m in OpenMpRunner.Maps(File.ReadLines("/proc/self/maps"))) {
                if (Path.GetFileName(m.Path) != fileName) continue;
                if (path is not null && path != m.Path) {
                    reason = $"two {fileName} are mapped: {path}, {m.Path}";
                    return null;
                }
                path = m.Path;
            }
            if (path is null) {
                reason = $"{fileName} is not mapped";
                return null;
            }
            // Already loaded: this only takes another reference to it.
            if (!NativeLibrary.TryLoad(path, out library)) {
                reason = $"cannot open {path}";
                return null;
            }
            return path;
        } catch (Exception e) when (e is IOException or UnauthorizedAccessException or DllNotFoundException or TypeInitializationException) {
            reason = e.Message;
            return null;
        }
    }
}
