using System.Buffers;
using System.Numerics;
using System.Runtime.CompilerServices;

namespace AdaGraft.Rules;

/// <summary>The data addresses of one tensor's fused step: parameter, gradient and up to three state slots.</summary>
internal struct FusedPointers
{
    public IntPtr W, G, S0, S1, S2;
    public bool Single;
}

/// <summary>
/// One SIMD vector of a rule's update at element <c>i</c> (reading and writing w and the slots in place). Implemented by
/// readonly structs that hold the step's constants as vectors, so that the JIT specialises and inlines the loop.
/// </summary>
internal unsafe interface IVectorKernel<T> where T : unmanaged
{
    void Body(T* w, T* g, T* s0, T* s1, T* s2, long i);
}

/// <summary>A rule's fused step over elements [start, end) of one tensor, with the host constants of <typeparamref name="TPlan"/>.</summary>
internal delegate void ChunkKernel<TPlan>(in TPlan plan, in FusedPointers at, long start, long end);

/// <summary>
/// The fused CPU path of the rule optimizers (Algorithm 1, NAdam, RAdam, Adamax, Adadelta, TorchSharp's RMSprop):
/// each element's gradient, state and parameter are read once and written once, in SIMD vectors over chunks run in
/// parallel (<see cref="FusedCpu.Run"/>), instead of one memory pass per tensor operation. Contiguous float32/float64
/// CPU tensors with a host step count only; everything else takes the eager path, which computes the same numbers.
/// </summary>
internal static unsafe class FusedRules
{
    /// <summary>
    /// True when the fused kernel may take this tensor's step: parameter, gradient and every allocated slot are
    /// contiguous CPU tensors of the parameter's float32/float64 dtype, and the step count lives on the host.
    /// </summary>
    internal static bool CanFuse(RuleState state, Tensor param, TensorRef grad, out ScalarType dtype)
    {
        dtype = NativeTensor.Dtype(param);
        return FusedCpu.Eligible(param, dtype) && FusedCpu.Eligible(grad, dtype) && StateCanFuse(state, dtype);
    }

    /// <summary>The state half of <see cref="CanFuse"/>: a host-side step count and <paramref name="dtype"/> CPU slots.</summary>
    internal static bool StateCanFuse(RuleState state, ScalarType dtype) => state.AppliedSteps is null && state.SlotsCanFuse(dtype);

    [ThreadStatic]
    private static List<FusedCpu.WorkItem>? t_items;

    [ThreadStatic]
    private static List<int>? t_starts;

    /// <summary>
    /// Takes the fused step of every tensor that qualifies (<see cref="CanFuse"/>), all in one parallel loop, and returns
    /// which it took (null: none). <paramref name="plan"/> advances a tensor's state counters, allocates the slots the
    /// step needs and returns the host constants and the slots' addresses; it runs only for tensors that qualify, after
    /// every check of the step passed. The version counters of the written tensors advance as eager in-place
    /// operations would advance them.
    /// </summary>
    internal static bool[]? Steps<TPlan>(int count, Func<int, (RuleState State, Tensor Param, TensorRef Grad)> tensor,
        Func<int, (TPlan Plan, FusedPointers Slots)> plan, ChunkKernel<TPlan> kernel, ref long fusedSteps)
    {
        if (count == 0) return null;
        // Plans (about 120 bytes each) for 1,000 tensors would be a large-object allocation every step, and with it a
        // full collection every few steps: they come from a pool instead.
        var plans = ArrayPool<TPlan>.Shared.Rent(count);
        try {
            var fused = new bool[count];
            var at = new FusedPointers[count];
            // A work item is a chunk of a large tensor or a whole small tensor; batches join consecutive small ones into
            // a chunk's worth (FusedCpu.Batch): 1,000 tensors of 10k elements make 250 batches of four.
            // The item and batch lists are kept per thread and reused: a step's lists would otherwise be a few kilobytes
            // of garbage per step at 10 tensors and tens of kilobytes at 1,000. (A step never runs inside another on one
            // thread: the kernels below call no step.)
            var items = t_items ??= new List<FusedCpu.WorkItem>();
            var starts = t_starts ??= new List<int>();
            items.Clear();
            starts.Clear();
            var kept = new List<Tensor>(count);
            long total = 0;
            for (int i = 0; i < count; i++) {
                var (state, p, grad) = tensor(i);
                if (!CanFuse(state, p, grad, out var dtype)) continue;
                fused[i] = true;
                var (constants, slots) = plan(i);
                plans[i] = constants;
                slots.W = FusedCpu.Pointer(p);
                slots.G = FusedCpu.Pointer(grad);
                slots.Single = dtype == ScalarType.Float32;
                at[i] = slots;
                kept.Add(p);
                // A gradient read as a bare handle is owned by the step until after this returns.
                if (grad.Managed is Tensor g) kept.Add(g);
                long n = NativeTensor.Numel(p);
                total += n;
                FusedCpu.Split(items, i, n, 0, 0);
                // The version counters advance now, while this tensor's metadata is in cache (after the kernels have
                // streamed every tensor it would not be); nothing can observe them before the kernels below have run.
                state.MarkParameterWritten(slots.W);
                state.MarkSlotsWritten();
                fusedSteps++;
            }
            if (kept.Count == 0) return null;
            FusedCpu.Batch(items, 0, items.Count, starts);
            starts.Add(items.Count);
            FusedCpu.Run(starts.Count - 1, total, b => {
                for (int j = starts[b]; j < starts[b + 1]; j++) {
                    var (t, start, length, _) = items[j];
                    kernel(plans[t], at[t], start, start + length);
                }
            });
            GC.KeepAlive(kept);
            return fused;
        } finally {
            ArrayPool<TPlan>.Shared.Return(plans, clearArray: RuntimeHelpers.IsReferenceOrContainsReferences<TPlan>());
        }
    }

    /// <summary>
    /// Runs <paramref name="k"/> over elements [start, end) of the tensor at <paramref name="at"/>: whole vectors in
    /// place, then a tail of fewer than one vector through zero-padded copies (padding lanes are computed and dropped).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void Sweep<T, TKernel>(in TKernel k, in FusedPointers at, long start, long end)
        where T : unmanaged where TKernel : struct, IVectorKernel<T>
    {
        T* w = (T*)at.W, g = (T*)at.G, s0 = (T*)at.S0, s1 = (T*)at.S1, s2 = (T*)at.S2;
        int width = Vector<T>.Count;
        long i = start;
        for (; i + width <= end; i += width) k.Body(w, g, s0, s1, s2, i);
        if (i == end) return;
        int count = (int)(end - i);
        T* tw = stackalloc T[width], tg = stackalloc T[width], t0 = stackalloc T[width], t1 = stackalloc T[width], t2 = stackalloc T[width];
        In(w, i, count, tw);
        In(g, i, count, tg);
        In(s0, i, count, t0);
        In(s1, i, count, t1);
        In(s2, i, count, t2);
        k.Body(tw, tg, s0 is null ? null : t0, s1 is null ? null : t1, s2 is null ? null : t2, 0);
        Out(tw, w, i, count);
        Out(t0, s0, i, count);
        Out(t1, s1, i, count);
        Out(t2, s2, i, count);
    }

    /// <summary>A tail of fewer than one vector at <paramref name="start"/> copied into a zero-padded vector-sized buffer (nothing copied from null).</summary>
    internal static void In<T>(T* src, long start, int count, T* dst) where T : unmanaged
    {
        new Span<T>(dst, Vector<T>.Count).Clear();
        if (src != null) new ReadOnlySpan<T>(src + start, count).CopyTo(new Span<T>(dst, count));
    }

    /// <summary>A tail's <paramref name="count"/> elements copied back to <paramref name="start"/> (nothing to null).</summary>
    internal static void Out<T>(T* src, T* dst, long start, int count) where T : unmanaged
    {
        if (dst != null) new ReadOnlySpan<T>(src, count).CopyTo(new Span<T>(dst + start, count));
    }

    /// <summary>Loads one vector at element <paramref name="i"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector<T> Load<T>(T* p, long i) where T : unmanaged => Unsafe.ReadUnaligned<Vector<T>>(p + i);

    /// <summary>Stores one vector at element <paramref name="i"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void Store<T>(T* p, long i, Vector<T> v) where T : unmanaged => Unsafe.WriteUnaligned(p + i, v);

    /// <summary>A host constant as a vector.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector<T> V<T>(double x) where T : unmanaged, IFloatingPointIeee754<T> => new(T.CreateChecked(x));

    /// <summary>
    /// 1/x with ±∞ and NaN replaced by 0 (what <c>reciprocal_().nan_to_num_(0, 0, 0)</c> gives eagerly): the
    /// pseudoinverse the rules use for ε = 0, where a coordinate with a zero denominator does not move.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector<T> PseudoInverse<T>(Vector<T> x) where T : unmanaged, IFloatingPointIeee754<T>
    {
        var inv = Vector<T>.One / x;
        return Vector.ConditionalSelect(Vector.LessThan(Vector.Abs(inv), new Vector<T>(T.PositiveInfinity)), inv, Vector<T>.Zero);
    }
}
