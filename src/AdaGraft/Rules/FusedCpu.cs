using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.ExceptionServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using System.Threading.Tasks;
using static AdaGraft.Rules.FusedRules;

namespace AdaGraft.Rules;

/// <summary>
/// The host constants and state pointers of one Algorithm 1 step for one tensor, as the fused CPU kernel reads them
/// (built by <see cref="SecondMomentRule.Plan"/>; the per-element math is the one in <see cref="SecondMomentRule"/>).
/// </summary>
internal struct FusedPlan
{
    public bool Maximize, Coupled, HasM1, Nesterov, Preconditioned, Beta2IsOne, AmsGrad, PseudoInverse, EpsInside, AfterPreconditioner, HasDecay;
    public double WeightDecay, Beta1, C1, NesterovGrad, Beta2, C2, EpsTerm, Scale, Decay, MomentumFold;
    public IntPtr M1, M2, VMax;
}

/// <summary>
/// Fused CPU kernels for Algorithm 1 and for grafting two Algorithm 1 rules: each element's gradient, state and
/// parameter are read once and written once, in SIMD vectors (<see cref="Vector{T}"/>) over chunks run in parallel.
/// Eager TorchSharp makes one memory pass per operation (about 7 for Adam, 12 for a grafted SGD#Adam); these make
/// one (a step) or two (a graft: propose and measure, then apply).
/// </summary>
/// <remarks>
/// Used for contiguous float32/float64 CPU tensors; everything else (CUDA, half precision, strided tensors, device
/// step counters) takes the eager path, which computes the same numbers. Norms are accumulated per chunk in double and
/// summed in a fixed order, so results do not depend on the number of threads (at most <c>torch.get_num_threads()</c>).
/// </remarks>
internal static unsafe partial class FusedCpu
{
    /// <summary>Elements per parallel work item (a multiple of any SIMD width).</summary>
    internal const long Chunk = 1 << 15;

    /// <summary>Below this many elements in a whole step, work runs on the calling thread.</summary>
    private const long ParallelThreshold = 1 << 16;

    /// <summary>True for a contiguous float32/float64 CPU tensor (or one with no elements) of <paramref name="dtype"/>.</summary>
    internal static bool Eligible(Tensor? t, ScalarType dtype) => t is not null && Eligible((TensorRef)t, dtype);

    /// <inheritdoc cref="Eligible(Tensor?, ScalarType)"/>
    internal static bool Eligible(TensorRef t, ScalarType dtype) =>
        dtype is ScalarType.Float32 or ScalarType.Float64 && NativeTensor.Dtype(t) == dtype
        && NativeTensor.DeviceType(t) == DeviceType.CPU && NativeTensor.IsContiguous(t);

    /// <summary>The address of the first element of a contiguous CPU tensor (zero when it has no elements).</summary>
    internal static IntPtr Pointer(Tensor t) => Pointer((TensorRef)t);

    /// <inheritdoc cref="Pointer(Tensor)"/>
    internal static IntPtr Pointer(TensorRef t)
    {
        if (NativeTensor.Numel(t) == 0) return IntPtr.Zero;
        // IsContiguous is false for a sparse tensor.
        if (NativeTensor.DeviceType(t) != DeviceType.CPU || !NativeTensor.IsContiguous(t))
            throw new InvalidOperationException("A fused kernel needs a dense, contiguous CPU tensor.");
        return NativeTensor.Data(t);
    }

    /// <summary>One piece of work: elements [Start, Start + Length) of tensor Tensor, in norm segment Segment.</summary>
    internal readonly record struct WorkItem(int Tensor, long Start, long Length, int Segment);

    /// <summary>How many threads a parallel loop of the fused kernels uses: libtorch's intra-op count, at most one per processor.</summary>
    internal static int TeamSize => Math.Min(Environment.ProcessorCount, torch.get_num_threads());

    /// <summary>
    /// Runs <paramref name="body"/> over work items, in parallel when there is enough work, on at most as many threads
    /// as libtorch is allowed (<c>torch.set_num_threads</c>), so a user who limits torch limits the kernels too.
    /// </summary>
    internal static void Run(int count, long totalElements, Action<int> body)
    {
        int threads = totalElements < ParallelThreshold || count == 1 ? 1 : TeamSize;
        if (threads <= 1) {
            for (int j = 0; j < count; j++) body(j);
            return;
        }
        // On libtorch's OpenMP team when it is identified and not switched off (see OpenMpRunner, CpuSwitches), else on
        // the .NET thread pool. Either way an exception thrown by an item reaches the caller as itself (Parallel.For
        // would wrap it in an AggregateException).
        if (OpenMpRunner.TryRun(count, threads, body)) return;
        try {
            Parallel.For(0, count, new ParallelOptions { MaxDegreeOfParallelism = threads }, body);
        } catch (AggregateException e) when (e.InnerExceptions.Count > 0) {
            ExceptionDispatchInfo.Capture(e.InnerExceptions[0]).Throw();
        }
    }

    /// <summary>
    /// Advances <paramref name="t"/>'s autograd version counter as one in-place operation would, in O(1): a kernel
    /// that writes through a data pointer does not, so a backward pass through a graph that saved the old values would
    /// otherwise silently use the new ones (eager in-place operations make it raise). Natively when
    /// <see cref="NativeVersion"/> can; otherwise an in-place operation on an empty view of <paramref name="t"/>
    /// advances the counter the view shares with it. Call inside <c>no_grad</c>.
    /// </summary>
    internal static void MarkWritten(Tensor t)
    {
        if (NativeVersion.CanBump(t)) {
            NativeVersion.Bump(t);
            return;
        }
        using var empty = t.as_strided(EmptyShape, UnitStride, t.storage_offset());
        empty.zero_();
    }

    /// <summary>
    /// <see cref="MarkWritten(Tensor)"/> for a tensor written every step: libtorch's own <c>bump_version</c> when
    /// <see cref="NativeVersion"/> found it (whether the tensor may take it is asked once per tensor object and data
    /// address); otherwise an empty view made once and kept (one native call a step instead of four), made again when
    /// the tensor object or its data address changes (so an old storage is not kept alive). Views share their base's
    /// version counter, also across a <c>set_</c>.
    /// </summary>
    internal sealed class WriteMark : IDisposable
    {
        private Tensor? _view, _of;
        private IntPtr _at;
        private bool _native;

        /// <summary>Advances <paramref name="t"/>'s version counter; <paramref name="address"/> is its data address now.</summary>
        public void Mark(Tensor t, IntPtr address)
        {
            if (!ReferenceEquals(_of, t) || _at != address) {
                _view?.Dispose();
                _view = null;
                _native = NativeVersion.CanBump(t);
                if (!_native) _view = t.as_strided(EmptyShape, UnitStride, t.storage_offset()).DetachFromDisposeScope();
                _of = t;
                _at = address;
            }
            if (_native) NativeVersion.Bump(t);
            else _view!.zero_();
        }

        public void Dispose()
        {
            _view?.Dispose();
            _view = null;
            _of = null;
        }
    }

    private static readonly long[] EmptyShape = { 0 }, UnitStride = { 1 };

    /// <summary>
    /// Groups items [<paramref name="from"/>, <paramref name="to"/>) into batches, the units one thread of a parallel
    /// loop takes: an item of a chunk or more is a batch of its own, and consecutive smaller ones (whole small tensors)
    /// are joined until they make a chunk's worth, so that a thread sweeps them back to back and its memory streams run
    /// on across tensors instead of starting anew every few kilobytes. Appends each batch's first item to
    /// <paramref name="starts"/>, records each item's batch in <paramref name="batchOf"/> (when given) and returns the
    /// items' elements. The single steps and the grafts batch alike through this.
    /// </summary>
    internal static long Batch(System.Collections.Generic.List<WorkItem> items, int from, int to, System.Collections.Generic.List<int> starts, int[]? batchOf = null)
    {
        long size = 0, total = 0;
        for (int j = from; j < to; j++) {
            long length = items[j].Length;
            if (j == from || size >= Chunk || length >= Chunk) {
                starts.Add(j);
                size = 0;
            }
            if (batchOf is not null) batchOf[j] = starts.Count - 1;
            size += length;
            total += length;
        }
        return total;
    }

    /// <summary>Splits a tensor of <paramref name="n"/> elements into work items that never straddle a block.</summary>
    internal static void Split(System.Collections.Generic.List<WorkItem> items, int tensor, long n, long blockSize, int firstSegment)
    {
        long block = blockSize > 0 ? blockSize : Math.Max(n, 1);
        for (long b = 0, seg = firstSegment; b < n; b += block, seg++) {
            long end = Math.Min(b + block, n);
            for (long s = b; s < end; s += Chunk) items.Add(new WorkItem(tensor, s, Math.Min(Chunk, end - s), (int)seg));
        }
    }

    /// <summary>
    /// True when vectors can be stored to <paramref name="p"/> (and on, a vector at a time) past the cache: 256-bit
    /// vectors, AVX, and <paramref name="p"/> 32-byte aligned. Callers fence (<c>Sse.StoreFence</c>) after such stores.
    /// </summary>
    private static bool CanStream<T>(T* p) where T : unmanaged => Vector<T>.Count * sizeof(T) == 32 && Avx.IsSupported && ((ulong)p & 31) == 0;

    /// <summary>A non-temporal store of one vector at element <paramref name="i"/> (see <see cref="CanStream{T}"/>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StoreStreamed<T>(T* p, long i, Vector<T> v) where T : unmanaged => Vector256.StoreAlignedNonTemporal(v.AsVector256(), p + i);

    /// <summary>
    /// Applies a grafted direction over elements [start, end): w ← w + r·ΔD, or, with a graft-owned momentum buffer,
    /// b ← μ·b + r·ΔD and w ← w + b.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void Apply<T>(IntPtr param, IntPtr direction, IntPtr momentum, double ratio, double mu, long start, long end)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        T* w = (T*)param, d = (T*)direction, b = (T*)momentum;
        T r = T.CreateChecked(ratio), m = T.CreateChecked(mu);
        var vr = new Vector<T>(r);
        var vm = new Vector<T>(m);
        int width = Vector<T>.Count;
        long i = start;
        if (b is null) {
            for (; i + width <= end; i += width) Store(w, i, Load(w, i) + Load(d, i) * vr);
            for (; i < end; i++) w[i] += d[i] * r;
        } else {
            for (; i + width <= end; i += width) {
                var bi = Load(b, i) * vm + Load(d, i) * vr;
                Store(b, i, bi);
                Store(w, i, Load(w, i) + bi);
            }
            for (; i < end; i++) {
                b[i] = b[i] * m + d[i] * r;
                w[i] += b[i];
            }
        }
    }

    /// <summary>
    /// The black-box graft's measure of the magnitude step over [start, end): returns Σ (w − saved)² and restores
    /// w ← saved in the same pass.
    /// </summary>
    internal static double MeasureAndRestore<T>(IntPtr param, IntPtr saved, long start, long end) where T : unmanaged, IFloatingPointIeee754<T> =>
        Differences<T>(param, saved, start, end, restore: true);

    /// <summary>The black-box graft's measure of the direction step over [start, end): Σ (w − saved)².</summary>
    internal static double Measure<T>(IntPtr param, IntPtr saved, long start, long end) where T : unmanaged, IFloatingPointIeee754<T> =>
        Differences<T>(param, saved, start, end, restore: false);

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static double Differences<T>(IntPtr param, IntPtr saved, long start, long end, bool restore) where T : unmanaged, IFloatingPointIeee754<T>
    {
        T* w = (T*)param, s = (T*)saved;
        int width = Vector<T>.Count;
        double sum = 0;
        long i = start;
        // Four accumulators (the loop does little else, so one would be bound by the add's latency), summed in T over
        // at most 32 rounds of four vectors, then added in double.
        const int Flush = 32;
        while (i + 4 * width <= end) {
            Vector<T> a0 = Vector<T>.Zero, a1 = Vector<T>.Zero, a2 = Vector<T>.Zero, a3 = Vector<T>.Zero;
            for (int r = 0; r < Flush && i + 4 * width <= end; r++, i += 4 * width) {
                Vector<T> s0 = Load(s, i), s1 = Load(s, i + width), s2 = Load(s, i + 2 * width), s3 = Load(s, i + 3 * width);
                Vector<T> d0 = Load(w, i) - s0, d1 = Load(w, i + width) - s1, d2 = Load(w, i + 2 * width) - s2, d3 = Load(w, i + 3 * width) - s3;
                a0 += d0 * d0;
                a1 += d1 * d1;
                a2 += d2 * d2;
                a3 += d3 * d3;
                if (restore) {
                    Store(w, i, s0);
                    Store(w, i + width, s1);
                    Store(w, i + 2 * width, s2);
                    Store(w, i + 3 * width, s3);
                }
            }
            sum += double.CreateChecked(Vector.Sum((a0 + a1) + (a2 + a3)));
        }
        for (; i < end; i++) {
            double d = double.CreateChecked(w[i] - s[i]);
            sum += d * d;
            if (restore) w[i] = s[i];
        }
        return sum;
    }

    /// <summary>The black-box graft's combination over [start, end): w ← saved + r·(w − saved).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void Combine<T>(IntPtr param, IntPtr saved, double ratio, long start, long end) where T : unmanaged, IFloatingPointIeee754<T>
    {
        T* w = (T*)param, s = (T*)saved;
        T r = T.CreateChecked(ratio);
        var vr = new Vector<T>(r);
        int width = Vector<T>.Count;
        long i = start;
        for (; i + width <= end; i += width) {
            var si = Load(s, i);
            Store(w, i, (Load(w, i) - si) * vr + si);
        }
        for (; i < end; i++) w[i] = (w[i] - s[i]) * r + s[i];
    }

    /// <summary>
    /// The black-box graft's save over [start, end): saved ← w, streamed past the cache when aligned (the copy is
    /// next read only after a whole child step, so caching it, and reading each line before overwriting it, is waste).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void Save<T>(IntPtr param, IntPtr saved, long start, long end) where T : unmanaged, IFloatingPointIeee754<T>
    {
        T* w = (T*)param, s = (T*)saved;
        int width = Vector<T>.Count;
        long i = start;
        if (CanStream(s + start)) {
            for (; i + 4 * width <= end; i += 4 * width) {
                StoreStreamed(s, i, Load(w, i));
                StoreStreamed(s, i + width, Load(w, i + width));
                StoreStreamed(s, i + 2 * width, Load(w, i + 2 * width));
                StoreStreamed(s, i + 3 * width, Load(w, i + 3 * width));
            }
            Sse.StoreFence();
        }
        if (i < end) new ReadOnlySpan<T>(w + i, (int)(end - i)).CopyTo(new Span<T>(s + i, (int)(end - i)));
    }
}
