using System.Runtime.InteropServices;

namespace AdaGraft.Rules;

/// <summary>
/// Advances a tensor's autograd version counter with libtorch's own <c>torch::autograd::impl::bump_version</c> (what
/// every in-place operation calls), called directly: 20–40 ns instead of the 1.5–3 µs of a dispatched in-place
/// operation on an empty view. Used after a fused kernel wrote through a data pointer.
/// </summary>
/// <remarks>
/// <para>A TorchSharp tensor handle is an <c>at::Tensor*</c>, which is what a <c>const at::Tensor&amp;</c> parameter
/// receives, so the exported C++ functions take it as is. They are looked up, by their Itanium-ABI names, in the
/// <c>libtorch_cpu.so</c> this process has mapped (Linux only). Anything not found means <see cref="Available"/> is
/// false and callers use the in-place operation on an empty view (<see cref="FusedCpu.WriteMark"/>), which gives the
/// same counter.</para>
/// <para><c>bump_version</c> throws a C++ exception (which would end the process) for an undefined tensor and for an
/// inference tensor outside inference mode. A TorchSharp handle is never undefined, and TorchSharp has no inference
/// mode; still, every tensor is asked <c>is_inference()</c> once (<see cref="FusedCpu.WriteMark"/> keeps the answer
/// per tensor object and data address) and an inference tensor takes the in-place operation, which raises libtorch's
/// own error as a .NET exception, as the eager path does.</para>
/// </remarks>
internal static unsafe class NativeVersion
{
    private const string BumpName = "_ZN5torch8autograd4impl12bump_versionERKN2at6TensorE";
    private const string IsInferenceName = "_ZN2at4_ops12is_inference4callERKNS_6TensorE";
    private const string VersionName = "_ZN2at4_ops8_version4callERKNS_6TensorE";

    private static readonly delegate* unmanaged<IntPtr, void> s_bump;
    private static readonly delegate* unmanaged<IntPtr, byte> s_isInference;
    private static readonly delegate* unmanaged<IntPtr, long> s_version;

    /// <summary>Why <see cref="Available"/> is false (null when it is true).</summary>
    internal static string? Reason { get; }

    /// <summary>True when the native functions were found (tests may turn it off to exercise the fallback).</summary>
    internal static bool Available { get; set; }

    static NativeVersion()
    {
        if (MappedLibrary.Exports("libtorch_cpu.so", new[] { BumpName, IsInferenceName, VersionName }, out var why) is not { } f) {
            Reason = why;
            return;
        }
        s_bump = (delegate* unmanaged<IntPtr, void>)f[0];
        s_isInference = (delegate* unmanaged<IntPtr, byte>)f[1];
        s_version = (delegate* unmanaged<IntPtr, long>)f[2];
        Available = true;
    }

    /// <summary>True when <paramref name="t"/> may have its counter advanced natively (not an inference tensor).</summary>
    internal static bool CanBump(Tensor t) => Available && s_isInference(t.Handle) == 0;

    /// <summary>Advances <paramref name="t"/>'s version counter by one (only after <see cref="CanBump"/> said yes).</summary>
    internal static void Bump(Tensor t) => s_bump(t.Handle);

    /// <summary><paramref name="t"/>'s autograd version counter (tests; only when the functions were found).</summary>
    internal static long Version(Tensor t) =>
        s_version is not null ? s_version(t.Handle) : throw new InvalidOperationException($"libtorch's _version was not found: {Reason}");
}
