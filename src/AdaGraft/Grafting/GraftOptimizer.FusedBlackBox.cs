namespace AdaGraft.Grafting;

/// <summary>The fused black-box path: Algorithm 3 with fused save, measure-and-restore, measure and combine kernels.</summary>
public sealed partial class GraftOptimizer
{
    /// <summary>
    /// Algorithm 3 with fused CPU kernels when every parameter with a gradient is a contiguous float32/float64 CPU
    /// tensor: the children step in place as usual, but measuring M's step and restoring the parameters is one pass,
    /// and per tensor (or block) measuring D's step and combining run back to back while the tensor is still in cache.
    /// Returns null (nothing done) otherwise.
    /// </summary>
    /// <summary>
    /// After a black-box child's step: re-reads each parameter's address (a child may have given it new storage, and
    /// the kernels must never write through a stale pointer). A child that left a parameter unfit for the fused
    /// kernels (another dtype or device, strided) gets the parameters restored from the saved copy and a clear error.
    /// </summary>
    private void Repoint(bool[] active, ScalarType[] dtypes, long[] numels, IntPtr[] w, string child)
    {
        for (int i = 0; i < _params.Length; i++) {
            if (!active[i]) continue;
            var p = _params[i];
            if (!FusedCpu.Eligible(p, dtypes[i]) || p.numel() != numels[i]) {
                RestoreSaved(active);
                throw new InvalidOperationException(
                    $"The {child} optimizer turned the parameter of shape [{string.Join(", ", p.shape)}] from a contiguous {dtypes[i]} CPU tensor "
                    + $"into a{(p.is_contiguous() ? " contiguous" : " strided")} {p.dtype} tensor on {p.device}; a black-box graft needs children that "
                    + "update their parameters in place. The parameters were restored; the child's own state has advanced. "
                    + "Set GraftOptions.FusedCpuKernel = false to graft such an optimizer on the eager path.");
            }
            w[i] = FusedCpu.Pointer(p);
        }
    }

    private Measured? TryFusedBlackBoxStep(TensorRef?[] stepGrads)
    {
        if (!Fused || FusedCandidates(stepGrads, (_, _, _, _) => true) is not var (grads, dtypes, numels)) return null;
        int n = _params.Length;
        var active = Array.ConvertAll(grads, x => x is not null);

        var layout = new FusedLayout(active, numels, dtypes, BlockSize, HostRatio, GroupElements);
        var items = layout.Items;
        var w = new IntPtr[n];
        var s = new IntPtr[n];
        for (int i = 0; i < n; i++) {
            if (!active[i]) continue;
            var p = _params[i];
            if (_saved[i] is not Tensor saved || !FusedCpu.Eligible(saved, dtypes[i]) || saved.numel() != numels[i]) {
                _saved[i]?.Dispose();
                _saved[i] = saved = torch.empty_like(p).DetachFromDisposeScope();
            }
            w[i] = FusedCpu.Pointer(p);
            s[i] = FusedCpu.Pointer(saved);
        }
        // The save is a kernel too: streamed stores (the copy is next read after a whole child step), and no switch
        // from libtorch's OpenMP threads (which spin for a while after each libtorch operation) to ours in between.
        layout.Run(0, items.Count, layout.Total, j => {
            var (t, start, length, _) = items[j];
            if (dtypes[t] == ScalarType.Float32) FusedCpu.Save<float>(w[t], s[t], start, start + length);
            else FusedCpu.Save<double>(w[t], s[t], start, start + length);
        });

        ChildStep(_magnitude, active);
        Repoint(active, dtypes, numels, w, "magnitude");
        layout.Run(0, items.Count, layout.Total, j => {
            var (t, start, length, _) = items[j];
            layout.SumM[j] = dtypes[t] == ScalarType.Float32
                ? FusedCpu.MeasureAndRestore<float>(w[t], s[t], start, start + length)
                : FusedCpu.MeasureAndRestore<double>(w[t], s[t], start, start + length);
        });

        ChildStep(_direction, active);
        Repoint(active, dtypes, numels, w, "direction");
        void Measure(int from, int to, long elements) => layout.Run(from, to, elements, j => {
            var (t, start, length, _) = items[j];
            layout.SumD[j] = dtypes[t] == ScalarType.Float32
                ? FusedCpu.Measure<float>(w[t], s[t], start, start + length)
                : FusedCpu.Measure<double>(w[t], s[t], start, start + length);
        });
        void Combine(int from, int to, long elements) => layout.Run(from, to, elements, j => {
            var (t, start, length, segment) = items[j];
            if (dtypes[t] == ScalarType.Float32) FusedCpu.Combine<float>(w[t], s[t], layout.Ratio[segment], start, start + length);
            else FusedCpu.Combine<double>(w[t], s[t], layout.Ratio[segment], start, start + length);
        });
        layout.Sweep(global: Options.Granularity == GraftGranularity.Global, Measure, Combine, Options.ReduceSquaredNorms);
        for (int i = 0; i < n; i++) if (active[i]) (_marks[i] ??= new()).Mark(_params[i], w[i]);
        GC.KeepAlive(_saved);
        FusedSteps++;
        return new Measured { Host = layout.Build() };
    }
}
