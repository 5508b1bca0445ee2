using static AdaGraft.Rules.TensorLayout;

namespace AdaGraft.Optimizers;

/// <summary>
/// Checks made before a step changes anything, the same on the eager and the fused path: every misuse they catch
/// raises one <see cref="InvalidOperationException"/> (or <see cref="NotSupportedException"/> for sparse gradients)
/// naming the parameter, and nothing has changed when it does.
/// </summary>
internal static class GradientChecks
{
    /// <summary>
    /// Throws when <paramref name="grad"/>, read from <paramref name="p"/>, cannot be used by a dense optimizer: sparse,
    /// another dtype or device, or another shape (TorchSharp lets any tensor be assigned to <c>grad</c>).
    /// </summary>
    /// <param name="p">The parameter.</param>
    /// <param name="grad">Its gradient, read once by the caller for the whole step.</param>
    /// <param name="index">Its index in the optimizer's parameter list (for the message), or −1.</param>
    public static void Check(Parameter p, TensorRef grad, int index)
    {
        if (NativeTensor.IsSparse(grad))
            throw new NotSupportedException($"The gradient of the {Describe(p, index)} is sparse; AdaGraft's optimizers need dense gradients (create the embedding with sparse: false).");
        if (NativeTensor.Dtype(grad) != NativeTensor.Dtype(p) || !SameDevice(grad, p))
            throw new InvalidOperationException($"The gradient of the {Describe(p, index)} is {NativeTensor.Dtype(grad)} on {NativeTensor.Device(grad)} but the parameter is {p.dtype} on {p.device}; give the parameter a gradient of its own dtype and device (e.g. grad.to(param.dtype, param.device)).");
        if (!SameShape(grad, p))
            throw new InvalidOperationException($"The gradient of the {Describe(p, index)} has shape {Shape(NativeTensor.Shape(grad))}; a gradient must have its parameter's shape. Assign p.grad a tensor shaped like p (or call zero_grad() after changing the parameter).");
    }

    /// <summary>
    /// Reads <paramref name="p"/>'s gradient once for a step (null: it has none). Where
    /// <see cref="NativeTensor.Available"/>, as a bare native handle the caller owns (no managed <see cref="Tensor"/>:
    /// an object with a finalizer, registered on the dispose scope, per tensor per step); otherwise through
    /// TorchSharp. Free it with <see cref="Free"/>, or give the handle to a wrapper (<c>Tensor.UnsafeCreateTensor</c>).
    /// </summary>
    public static TensorRef? Read(Parameter p)
    {
        if (NativeTensor.Available) {
            var raw = NativeTensor.Grad(p);
            if (raw == IntPtr.Zero) return null;
            return new TensorRef(raw, null);
        }
        if (p.grad is Tensor g) return g;
        return null;
    }

    /// <summary>Frees a gradient from <see cref="Read"/>.</summary>
    public static void Free(TensorRef? grad)
    {
        if (grad is not TensorRef g) return;
        if (g.Managed is Tensor t) t.Dispose();
        else NativeTensor.Free(g.Handle);
    }

    /// <summary>
    /// Throws when two CPU parameters share memory (views of one tensor whose element ranges overlap): a step writes
    /// each parameter in place, so it would update the same bytes twice, and the fused kernels would race on them.
    /// Parameters on other devices are not checked (only the CPU path has fused kernels).
    /// </summary>
    public static void CheckDisjoint(IReadOnlyList<Parameter> ps)
    {
        List<(ulong start, ulong end, int index)>? spans = null;
        for (int i = 0; i < ps.Count; i++) {
            var p = ps[i];
            if (NativeTensor.DeviceType(p) != DeviceType.CPU || NativeTensor.Numel(p) == 0) continue;
            var (start, end) = Extent(p);
            (spans ??= new()).Add((start, end, i));
        }
        if (spans is null || spans.Count < 2) return;
        spans.Sort((a, b) => a.start.CompareTo(b.start));
        var reach = spans[0];
        for (int k = 1; k < spans.Count; k++) {
            var s = spans[k];
            if (s.start < reach.end) {
                int a = Math.Min(reach.index, s.index), b = Math.Max(reach.index, s.index);
                throw new InvalidOperationException(
                    $"The {Describe(ps[a], a)} and the {Describe(ps[b], b)} share memory (views of one tensor); an optimizer "
                    + "updates each parameter in place, so shared elements would be stepped twice. Give each parameter its own "
                    + "storage (e.g. clone() the view), or tie weights by passing the same Parameter object once.");
            }
            if (s.end > reach.end) reach = s;
        }
    }

    /// <summary>The bytes [start, end) a CPU tensor's elements span (for a strided tensor, from its first to its last element).</summary>
    private static (ulong start, ulong end) Extent(Tensor p)
    {
        if (NativeTensor.IsContiguous(p)) {
            ulong first = (ulong)(long)Rules.FusedCpu.Pointer(p);
            return (first, first + (ulong)(NativeTensor.Numel(p) * NativeTensor.ElementSize(p)));
        }
        long span = 1;
        var shape = p.shape;
        var strides = p.stride();
        for (int d = 0; d < shape.Length; d++) span += (shape[d] - 1) * Math.Abs(strides[d]);
        ulong start;
        using (var first = p.as_strided(new long[] { 1 }, new long[] { 1 }, p.storage_offset()))
            start = (ulong)(long)Rules.FusedCpu.Pointer(first);
        return (start, start + (ulong)(span * NativeTensor.ElementSize(p)));
    }
}
