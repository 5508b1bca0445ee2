using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics.X86;
using static AdaGraft.Rules.FusedRules;

namespace AdaGraft.Rules;

/// <summary>Algorithm 1's fused kernels: a step, and a graft's propose (both children, ΔD out, norms).</summary>
internal static unsafe partial class FusedCpu
{
    /// <summary>The constants of one plan as vectors of <typeparamref name="T"/>, for a kernel of shape <typeparamref name="S"/>.</summary>
    private readonly struct K<T, S> where T : unmanaged, IFloatingPointIeee754<T> where S : struct, IPlanShape
    {
        public readonly Vector<T> Wd, B1, C1, NesG, B2, C2, Eps, Scale, Decay, Fold;
        public readonly PlanFlags Flags;
        public readonly T* M1, M2, VMax;

        // The switches: fixed by the shape S (folded by the JIT), else read from the plan.
        public bool Maximize => FusedShapes.Is<S>(Flags, PlanFlags.Maximize);

        public bool Coupled => FusedShapes.Is<S>(Flags, PlanFlags.Coupled);

        public bool HasM1 => FusedShapes.Is<S>(Flags, PlanFlags.HasM1);

        public bool Nesterov => FusedShapes.Is<S>(Flags, PlanFlags.Nesterov);

        public bool Preconditioned => FusedShapes.Is<S>(Flags, PlanFlags.Preconditioned);

        public bool Beta2IsOne => FusedShapes.Is<S>(Flags, PlanFlags.Beta2IsOne);

        public bool AmsGrad => FusedShapes.Is<S>(Flags, PlanFlags.AmsGrad);

        public bool PseudoInverse => FusedShapes.Is<S>(Flags, PlanFlags.PseudoInverse);

        public bool EpsInside => FusedShapes.Is<S>(Flags, PlanFlags.EpsInside);

        public bool After => FusedShapes.Is<S>(Flags, PlanFlags.After);

        public bool HasDecay => FusedShapes.Is<S>(Flags, PlanFlags.HasDecay);

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public K(in FusedPlan p) : this(p, (T*)p.M1, (T*)p.M2, (T*)p.VMax) { }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public K(in FusedPlan p, T* m1, T* m2, T* vmax)
        {
            Wd = V(p.WeightDecay);
            B1 = V(p.Beta1);
            C1 = V(p.C1);
            NesG = V(p.NesterovGrad);
            B2 = V(p.Beta2);
            C2 = V(p.C2);
            Eps = V(p.EpsTerm);
            Scale = V(p.Scale);
            Decay = V(p.Decay);
            Fold = V(p.MomentumFold);
            Flags = FusedShapes.Flags(p);
            M1 = m1;
            M2 = m2;
            VMax = vmax;
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static Vector<T> V(double x) => new(T.CreateChecked(x));
    }

    /// <summary>
    /// One SIMD vector of Algorithm 1 at element <paramref name="i"/>: advances the state in place and returns Δ
    /// (the new parameter is w + Δ). Mirrors <see cref="SecondMomentRule.Propose"/> operation for operation.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector<T> Delta<T, S>(in K<T, S> k, Vector<T> g, Vector<T> w, long i) where T : unmanaged, IFloatingPointIeee754<T> where S : struct, IPlanShape
    {
        if (k.Maximize) g = -g;
        if (k.Coupled) g += w * k.Wd;
        Vector<T> d;
        if (!k.Preconditioned) {
            d = k.Scale * FirstMoment(k, g, i);
        } else {
            var m2 = Load(k.M2, i);
            m2 = k.Beta2IsOne ? m2 + k.C2 * (g * g) : m2 * k.B2 + k.C2 * (g * g);
            Store(k.M2, i, m2);
            var v = m2;
            if (k.AmsGrad) {
                v = Vector.Max(Load(k.VMax, i), m2);
                Store(k.VMax, i, v);
            }
            Vector<T> inv = default, den = default;
            if (k.PseudoInverse) {
                inv = Vector<T>.One / Vector.SquareRoot(v);
                // nan_to_num(0, 0, 0): +∞ (v = 0), −∞ and NaN become 0, the pseudoinverse of √v.
                inv = Vector.ConditionalSelect(Vector.LessThan(Vector.Abs(inv), new Vector<T>(T.PositiveInfinity)), inv, Vector<T>.Zero);
            } else {
                den = k.EpsInside ? Vector.SquareRoot(v + k.Eps) : Vector.SquareRoot(v) + k.Eps;
            }
            if (k.After) {
                var q = k.PseudoInverse ? g * inv : g / den;
                if (k.HasM1) {
                    var m1 = Load(k.M1, i) * k.B1 + k.Fold * q;
                    Store(k.M1, i, m1);
                    d = k.Scale * m1;
                } else {
                    d = k.Scale * q;
                }
            } else {
                var num = FirstMoment(k, g, i);
                d = k.Scale * (k.PseudoInverse ? num * inv : num / den);
            }
        }
        if (k.HasDecay) d += k.Decay * w;
        return d;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector<T> FirstMoment<T, S>(in K<T, S> k, Vector<T> g, long i) where T : unmanaged, IFloatingPointIeee754<T> where S : struct, IPlanShape
    {
        if (!k.HasM1) return g;
        var m1 = Load(k.M1, i) * k.B1 + k.C1 * g;
        Store(k.M1, i, m1);
        return k.Nesterov ? g * k.NesG + k.B1 * m1 : m1;
    }

    /// <summary>A standalone step over elements [start, end): w ← w + Δ.</summary>
    internal static void Step<T>(in FusedPlan plan, IntPtr param, IntPtr grad, long start, long end) where T : unmanaged, IFloatingPointIeee754<T>
    {
        var user = new StepUser<T>(plan, param, grad, start, end);
        FusedShapes.With<StepUser<T>, bool>(FusedShapes.Flags(plan), ref user);
    }

    private readonly struct StepUser<T>(FusedPlan plan, IntPtr param, IntPtr grad, long start, long end) : IShapeUser<bool>
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        public bool Use<S>() where S : struct, IPlanShape
        {
            Step<T, S>(plan, param, grad, start, end);
            return true;
        }
    }

    /// <summary>The step in kernel shape <typeparamref name="S"/> (<see cref="Step{T}"/> picks it; tests call it with the open shape).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void Step<T, S>(in FusedPlan plan, IntPtr param, IntPtr grad, long start, long end)
        where T : unmanaged, IFloatingPointIeee754<T> where S : struct, IPlanShape
    {
        var k = new K<T, S>(plan);
        T* w = (T*)param, g = (T*)grad;
        int width = Vector<T>.Count;
        long i = start;
        for (; i + width <= end; i += width) {
            var wi = Load(w, i);
            Store(w, i, wi + Delta(k, Load(g, i), wi, i));
        }
        if (i < end) StepTail<T>(plan, w, g, i, (int)(end - i));
    }

    /// <summary>The last elements of a step, fewer than a vector, through zero-padded buffers (the open shape: same math).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void StepTail<T>(in FusedPlan plan, T* w, T* g, long i, int count) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int width = Vector<T>.Count;
        T* tw = stackalloc T[width], tg = stackalloc T[width], t1 = stackalloc T[width], t2 = stackalloc T[width], tv = stackalloc T[width];
        In(w, i, count, tw);
        In(g, i, count, tg);
        var k = TailIn<T>(plan, i, count, t1, t2, tv);
        var w0 = Load(tw, 0);
        Store(tw, 0, w0 + Delta(k, Load(tg, 0), w0, 0));
        Out(tw, w, i, count);
        TailOut(plan, i, count, t1, t2, tv);
    }

    /// <summary>
    /// Both children of a graft over elements [start, end): advances both states, writes ΔD to
    /// <paramref name="directionOut"/>, and returns Σ ΔM² and Σ ΔD² (accumulated in double).
    /// </summary>
    internal static (double m, double d) Propose<T>(in FusedPlan magnitude, in FusedPlan direction, IntPtr param, IntPtr grad, IntPtr directionOut, long start, long end,
        bool streamOut = false)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        var user = new ProposeUser<T>(new ProposeArgs(magnitude, direction, param, grad, directionOut, start, end, streamOut));
        return FusedShapes.With<ProposeUser<T>, (double, double)>(FusedShapes.Flags(magnitude), ref user);
    }

    internal readonly record struct ProposeArgs(FusedPlan Magnitude, FusedPlan Direction, IntPtr Param, IntPtr Grad, IntPtr Out, long Start, long End, bool StreamOut);

    /// <summary>Picks the magnitude child's shape, then (<see cref="ProposeUser{T, SM}"/>) the direction child's.</summary>
    private readonly struct ProposeUser<T>(ProposeArgs a) : IShapeUser<(double, double)> where T : unmanaged, IFloatingPointIeee754<T>
    {
        public (double, double) Use<SM>() where SM : struct, IPlanShape
        {
            var user = new ProposeUser<T, SM>(a);
            return FusedShapes.With<ProposeUser<T, SM>, (double, double)>(FusedShapes.Flags(a.Direction), ref user);
        }
    }

    private readonly struct ProposeUser<T, SM>(ProposeArgs a) : IShapeUser<(double, double)>
        where T : unmanaged, IFloatingPointIeee754<T> where SM : struct, IPlanShape
    {
        public (double, double) Use<SD>() where SD : struct, IPlanShape => Propose<T, SM, SD>(a);
    }

    /// <summary>The propose in kernel shapes <typeparamref name="SM"/> and <typeparamref name="SD"/> (<see cref="Propose{T}"/> picks them; tests call it with open shapes).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static (double m, double d) Propose<T, SM, SD>(in ProposeArgs a)
        where T : unmanaged, IFloatingPointIeee754<T> where SM : struct, IPlanShape where SD : struct, IPlanShape
    {
        var km = new K<T, SM>(a.Magnitude);
        var kd = new K<T, SD>(a.Direction);
        T* w = (T*)a.Param, g = (T*)a.Grad, o = (T*)a.Out;
        long end = a.End;
        int width = Vector<T>.Count;
        double sm = 0, sd = 0;
        long i = a.Start;
        // Squares are summed in T over at most 128 vectors, then added in double.
        const int Flush = 128;
        // w is read here only when a child needs it (weight decay); otherwise the apply pass is its only reader.
        bool needW = km.Coupled || km.HasDecay || kd.Coupled || kd.HasDecay;
        // ΔD that will not be in cache when it is applied (the caller decides: global grafting, or a group too large
        // for the threads' L2) is streamed past the cache: a cached store would first read the line it overwrites.
        bool nonTemporal = a.StreamOut && CanStream(o + i);
        while (i + width <= end) {
            Vector<T> am = Vector<T>.Zero, ad = Vector<T>.Zero;
            for (int r = 0; r < Flush && i + width <= end; r++, i += width) {
                var wi = needW ? Load(w, i) : Vector<T>.Zero;
                var gi = Load(g, i);
                var dm = Delta(km, gi, wi, i);
                var dd = Delta(kd, gi, wi, i);
                if (nonTemporal) StoreStreamed(o, i, dd);
                else Store(o, i, dd);
                am += dm * dm;
                ad += dd * dd;
            }
            sm += double.CreateChecked(Vector.Sum(am));
            sd += double.CreateChecked(Vector.Sum(ad));
        }
        if (nonTemporal) Sse.StoreFence();
        if (i < end) ProposeTail<T>(a, w, g, o, i, (int)(end - i), ref sm, ref sd);
        return (sm, sd);
    }

    /// <summary>The last elements of a propose, fewer than a vector, through zero-padded buffers (the open shape: same math).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void ProposeTail<T>(in ProposeArgs a, T* w, T* g, T* o, long i, int count, ref double sm, ref double sd)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        int width = Vector<T>.Count;
        T* tw = stackalloc T[width], tg = stackalloc T[width];
        T* m1 = stackalloc T[width], m2 = stackalloc T[width], mv = stackalloc T[width];
        T* d1 = stackalloc T[width], d2 = stackalloc T[width], dv = stackalloc T[width];
        In(w, i, count, tw);
        In(g, i, count, tg);
        var kmt = TailIn<T>(a.Magnitude, i, count, m1, m2, mv);
        var kdt = TailIn<T>(a.Direction, i, count, d1, d2, dv);
        var w0 = Load(tw, 0);
        var g0 = Load(tg, 0);
        var vm = Delta(kmt, g0, w0, 0);
        var vd = Delta(kdt, g0, w0, 0);
        for (int l = 0; l < count; l++) {
            double x = double.CreateChecked(vm[l]), y = double.CreateChecked(vd[l]);
            sm += x * x;
            sd += y * y;
            o[i + l] = vd[l];
        }
        TailOut(a.Magnitude, i, count, m1, m2, mv);
        TailOut(a.Direction, i, count, d1, d2, dv);
    }

    /// <summary>Copies a plan's state slots at [i, i + count) into zero-padded buffers; the plan's constants over them.</summary>
    private static K<T, FusedShapes.Open> TailIn<T>(in FusedPlan p, long i, int count, T* t1, T* t2, T* tv) where T : unmanaged, IFloatingPointIeee754<T>
    {
        T* m1 = (T*)p.M1, m2 = (T*)p.M2, vmax = (T*)p.VMax;
        In(m1, i, count, t1);
        In(m2, i, count, t2);
        In(vmax, i, count, tv);
        return new K<T, FusedShapes.Open>(p, m1 is null ? null : t1, m2 is null ? null : t2, vmax is null ? null : tv);
    }

    private static void TailOut<T>(in FusedPlan p, long i, int count, T* t1, T* t2, T* tv) where T : unmanaged, IFloatingPointIeee754<T>
    {
        Out(t1, (T*)p.M1, i, count);
        Out(t2, (T*)p.M2, i, count);
        Out(tv, (T*)p.VMax, i, count);
    }
}
