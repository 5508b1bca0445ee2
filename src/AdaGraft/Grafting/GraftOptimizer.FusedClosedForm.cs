using AdaGraft.Optimizers;

namespace AdaGraft.Grafting;

/// <summary>The fused closed-form path: two fused CPU passes (propose both and measure; apply) over work items grouped by tensor.</summary>
public sealed partial class GraftOptimizer
{
    /// <summary>The fused closed form's plans, kept between steps (M's of tensor t at t, D's at n + t).</summary>
    private FusedPlan[] _plans = Array.Empty<FusedPlan>();

    /// <summary>
    /// The closed-form step in two fused CPU passes (see <see cref="GraftOptions.FusedCpuKernel"/>), or null, having
    /// changed nothing, when some tensor or child does not qualify.
    /// </summary>
    private Measured? TryFusedClosedFormStep(TensorRef?[] stepGrads)
    {
        if (!Fused || _magnitude is not IFusedPlanSource gm || _direction is not IFusedPlanSource gd)
            return null;
        int n = _params.Length;
        bool beforeMomentum = Options.Point == GraftPoint.BeforeMomentum;
        // The gradient and both children's states must fit too, and the graft's own buffers where they exist.
        bool Fits(int i, Parameter p, TensorRef grad, ScalarType dtype) =>
            FusedCpu.Eligible(grad, dtype) && gm.CanFuseState(p, dtype) && gd.CanFuseState(p, dtype)
            && (!beforeMomentum || _momentum[i] is not Tensor b || FusedCpu.Eligible(b, dtype))
            && (_saved[i] is not Tensor s || FusedCpu.Eligible(s, dtype));
        if (FusedCandidates(stepGrads, Fits) is not var (grads, dtypes, numels)) return null;

        // Nothing has changed so far; from here on both children advance.
        // Per tensor and per block, a group of consecutive tensors (one large tensor, or small ones up to
        // SweptElements) is proposed, measured and applied before the next group, through one scratch buffer per
        // dtype. Global grafting needs every norm before any step, so ΔD goes to a buffer per tensor; so does a graft
        // whose norms are reduced across shards.
        bool interleave = Options.Granularity != GraftGranularity.Global && Options.ReduceSquaredNorms is null;
        var active = Array.ConvertAll(grads, x => x is not null);
        var layout = new FusedLayout(active, numels, dtypes, BlockSize, HostRatio, interleave ? SweptElements : 0);
        var items = layout.Items;
        // Kept between steps: two plans (about 120 bytes each) per tensor would be a large-object allocation every
        // step for 1,000 tensors, and with it a full collection every few steps.
        if (_plans.Length < 2 * n) _plans = new FusedPlan[2 * n];
        var plans = _plans; // M's plan of tensor t at t, D's at n + t
        var w = new IntPtr[n];
        var g = new IntPtr[n];
        var o = new IntPtr[n];
        var mom = new IntPtr[n];
        // One shared ΔD buffer per dtype, as large as the largest group of such tensors (a group: one tensor, or several
        // small ones swept together); each tensor writes at its offset in its group.
        var scratch = new Dictionary<ScalarType, IntPtr>();
        IntPtr ScratchPointer(ScalarType dtype, long offset)
        {
            if (!scratch.TryGetValue(dtype, out var ptr)) scratch[dtype] = ptr = FusedCpu.Pointer(SharedScratch(dtype, layout.LargestGroup[dtype]));
            return ptr + (nint)(offset * Bytes(dtype));
        }
        static int Bytes(ScalarType dtype) => dtype == ScalarType.Float32 ? sizeof(float) : sizeof(double);
        for (int i = 0; i < n; i++) {
            if (!active[i]) continue;
            var p = _params[i];
            plans[i] = gm.Plan(p);
            plans[n + i] = gd.Plan(p);
            w[i] = FusedCpu.Pointer(p);
            g[i] = FusedCpu.Pointer(grads[i]!.Value);
            o[i] = interleave ? ScratchPointer(dtypes[i], layout.OffsetInGroup[i]) : FusedCpu.Pointer(Fit(ref _saved[i], p));
            if (beforeMomentum) mom[i] = FusedCpu.Pointer(_momentum[i] ??= torch.zeros_like(p).DetachFromDisposeScope());
            // The kernels below write through data pointers: advance the version counters as eager in-place ops would,
            // now, while this tensor's metadata is in cache (nothing can observe them before the kernels have run).
            var mState = gm.StateOf(p);
            mState.MarkParameterWritten(w[i]);
            mState.MarkSlotsWritten();
            gd.StateOf(p).MarkSlotsWritten();
            if (beforeMomentum) FusedCpu.MarkWritten(_momentum[i]!);
        }

        double mu = Options.Momentum;
        // ΔD is streamed past the cache when it would not be there anyway by the time it is applied: after every
        // tensor's first pass (global), or when a thread's share of a group's ΔD is more than half its core's L2 (a
        // cached store would first read each line). On the 2-core VM (1 MiB of L2 a core) that streams groups over
        // 1 MiB; on a 16-core Xeon (2 MiB a core) it keeps a 10 × 1M float32 step's 8 MiB groups cached: 0.95× the two
        // fused steps instead of 1.32× when they were streamed (and 1.11× when nothing was).
        long streamAbove = CpuCache.L2BytesPerCore / 2 * FusedCpu.TeamSize;
        bool Stream(int t) => !interleave || layout.GroupTotal[t] * Bytes(dtypes[t]) > streamAbove;
        void Propose(int from, int to, long elements) => layout.Run(from, to, elements, j => {
            var (t, start, length, _) = items[j];
            bool stream = Stream(t);
            (layout.SumM[j], layout.SumD[j]) = dtypes[t] == ScalarType.Float32
                ? FusedCpu.Propose<float>(plans[t], plans[n + t], w[t], g[t], o[t], start, start + length, streamOut: stream)
                : FusedCpu.Propose<double>(plans[t], plans[n + t], w[t], g[t], o[t], start, start + length, streamOut: stream);
        });
        void Apply(int from, int to, long elements) => layout.Run(from, to, elements, j => {
            var (t, start, length, segment) = items[j];
            if (dtypes[t] == ScalarType.Float32) FusedCpu.Apply<float>(w[t], o[t], mom[t], layout.Ratio[segment], mu, start, start + length);
            else FusedCpu.Apply<double>(w[t], o[t], mom[t], layout.Ratio[segment], mu, start, start + length);
        });

        layout.Sweep(global: Options.Granularity == GraftGranularity.Global, Propose, Apply, Options.ReduceSquaredNorms);
        // Every tensor whose address the kernels used stays alive until here.
        GC.KeepAlive(grads);
        GC.KeepAlive(_saved);
        GC.KeepAlive(_fusedScratch);
        FusedSteps++;
        return new Measured { Host = layout.Build() };
    }

    /// <summary>
    /// The tensors a fused step works on: each parameter with a gradient (<paramref name="stepGrads"/>, read once for
    /// the step), its gradient, dtype and size — or null when none has a gradient, or when one of them is not a
    /// contiguous float32/float64 CPU tensor or fails <paramref name="fits"/> (index, parameter, gradient, dtype).
    /// Nothing changes here.
    /// </summary>
    private (TensorRef?[] grads, ScalarType[] dtypes, long[] numels)? FusedCandidates(TensorRef?[] stepGrads, Func<int, Parameter, TensorRef, ScalarType, bool> fits)
    {
        int n = _params.Length;
        var grads = new TensorRef?[n];
        var dtypes = new ScalarType[n];
        var numels = new long[n];
        bool any = false;
        for (int i = 0; i < n; i++) {
            var p = _params[i];
            if (stepGrads[i] is not TensorRef grad) continue;
            var dtype = NativeTensor.Dtype(p);
            if (!FusedCpu.Eligible(p, dtype) || !fits(i, p, grad, dtype)) return null;
            grads[i] = grad;
            dtypes[i] = dtype;
            numels[i] = NativeTensor.Numel(p);
            any = true;
        }
        return any ? (grads, dtypes, numels) : null;
    }

    /// <summary>The fused path's ΔD buffer for <paramref name="dtype"/>, of at least <paramref name="need"/> elements (kept between steps).</summary>
    private Tensor SharedScratch(ScalarType dtype, long need)
    {
        if (_fusedScratch.TryGetValue(dtype, out var t) && t.numel() >= need) return t;
        t?.Dispose();
        t = torch.empty(need, dtype).DetachFromDisposeScope();
        _fusedScratch[dtype] = t;
        return t;
    }

    /// <summary>
    /// The black box sweeps small consecutive tensors together up to this many elements (1 MiB of float32), so that the
    /// group is still in cache between its measure and its combine.
    /// </summary>
    private const long GroupElements = 1 << 18;

    /// <summary>
    /// The closed form's groups per tensor or block: consecutive tensors swept together up to this many elements
    /// (8 MiB of float32; a larger tensor is a group of its own). Fewer, larger groups mean fewer parallel loops and
    /// barriers: 1,000 tensors of 10k float32 took 8.3–8.6 ms a step in groups of this size against 9.8–11.1 ms in
    /// groups of <see cref="GroupElements"/>. The shared ΔD buffer is as large as the largest group.
    /// </summary>
    private const long SweptElements = 1 << 21;

    /// <summary>How many steps took the fused CPU path (diagnostics and tests).</summary>
    internal long FusedSteps { get; private set; }

    /// <summary>The one place the graft decides: its option and the process-wide switch (<see cref="CpuSwitches.FusedKernels"/>).</summary>
    private bool Fused => CpuSwitches.Fused(Options.FusedCpuKernel);
}
