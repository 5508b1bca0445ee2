using System.Runtime.CompilerServices;

namespace AdaGraft.Rules;

/// <summary>The switches of one <see cref="FusedPlan"/> as bits (what the per-element math branches on).</summary>
[Flags]
internal enum PlanFlags
{
    None = 0,
    Maximize = 1 << 0,
    Coupled = 1 << 1,
    HasM1 = 1 << 2,
    Nesterov = 1 << 3,
    Preconditioned = 1 << 4,
    Beta2IsOne = 1 << 5,
    AmsGrad = 1 << 6,
    PseudoInverse = 1 << 7,
    EpsInside = 1 << 8,
    After = 1 << 9,
    HasDecay = 1 << 10,
    All = (1 << 11) - 1,
}

/// <summary>
/// A kernel shape: which of a plan's switches are fixed when the kernel is compiled (<see cref="Known"/>) and to what
/// (<see cref="Values"/>). The kernels are generic over a shape, so the JIT compiles one loop per shape with the fixed
/// switches' branches folded away; the switches a shape leaves open are read from the plan. The math is the same code
/// in every shape (<c>FusedCpu.Delta</c>), so every shape gives the same numbers bit for bit.
/// </summary>
/// <remarks>
/// Why: a loop that tests eleven switches per vector is long enough that the CPU looks fewer vectors ahead, and two of
/// them in one loop (a graft's propose) spill registers; at 1M float32 the graft's propose took 2.8× the time of the
/// same math with the switches fixed (the <c>--kernel-shapes</c> dev aid in the benchmarks).
/// </remarks>
internal interface IPlanShape
{
    static abstract PlanFlags Known { get; }

    static abstract PlanFlags Values { get; }
}

/// <summary>Calls back with the shape type a plan's flags select (see <see cref="FusedShapes.With{U, R}"/>).</summary>
internal interface IShapeUser<out R>
{
    R Use<S>() where S : struct, IPlanShape;
}

/// <summary>The kernel shapes, and the choice of one for a plan.</summary>
internal static class FusedShapes
{
    // The switches most optimizers leave off: fixed off in every specialised shape, so a plan that sets one of them
    // takes the open shape. Weight decay (coupled or decoupled) and β2 = 1 (AdaGrad) stay open: one predictable branch.
    private const PlanFlags RarelyOn = PlanFlags.Maximize | PlanFlags.Nesterov | PlanFlags.AmsGrad;

    // With a preconditioner: these pick the loop. ε's placement means nothing with the pseudoinverse (ε = 0), and the
    // momentum's placement nothing without momentum, so the shapes for those leave it open (the plan may say either).
    private const PlanFlags Core = PlanFlags.HasM1 | PlanFlags.Preconditioned | PlanFlags.PseudoInverse | PlanFlags.EpsInside | PlanFlags.After;

    /// <summary>Every switch read from the plan: any plan.</summary>
    internal struct Open : IPlanShape
    {
        public static PlanFlags Known => PlanFlags.None;

        public static PlanFlags Values => PlanFlags.None;
    }

    // Without a preconditioner, Δ reads only these switches (and the open weight decay).
    private const PlanFlags Unscaled = RarelyOn | PlanFlags.HasM1 | PlanFlags.Preconditioned;

    /// <summary>SGD with momentum, heavy ball.</summary>
    internal struct Momentum : IPlanShape
    {
        public static PlanFlags Known => Unscaled;

        public static PlanFlags Values => PlanFlags.HasM1;
    }

    /// <summary>SGD without momentum.</summary>
    internal struct Plain : IPlanShape
    {
        public static PlanFlags Known => Unscaled;

        public static PlanFlags Values => PlanFlags.None;
    }

    /// <summary>Adam's shape: first moment over the root of the second plus ε.</summary>
    internal struct Adam : IPlanShape
    {
        public static PlanFlags Known => RarelyOn | Core;

        public static PlanFlags Values => PlanFlags.HasM1 | PlanFlags.Preconditioned;
    }

    /// <summary>Algorithm 1 with momentum and ε = 0 (the pseudoinverse): the paper's Adam and AdaGrad with momentum.</summary>
    internal struct AdamPseudoInverse : IPlanShape
    {
        public static PlanFlags Known => RarelyOn | (Core & ~PlanFlags.EpsInside);

        public static PlanFlags Values => PlanFlags.HasM1 | PlanFlags.Preconditioned | PlanFlags.PseudoInverse;
    }

    /// <summary>AdaGrad and RMSprop: the gradient over the root of the second moment plus ε.</summary>
    internal struct Scaled : IPlanShape
    {
        public static PlanFlags Known => RarelyOn | (Core & ~PlanFlags.After);

        public static PlanFlags Values => PlanFlags.Preconditioned;
    }

    /// <summary>AdaGrad and RMSprop with ε = 0 (the pseudoinverse).</summary>
    internal struct ScaledPseudoInverse : IPlanShape
    {
        public static PlanFlags Known => RarelyOn | (Core & ~(PlanFlags.After | PlanFlags.EpsInside));

        public static PlanFlags Values => PlanFlags.Preconditioned | PlanFlags.PseudoInverse;
    }

    /// <summary>The shape <paramref name="flags"/> select, as a small number (<see cref="With{U, R}"/> maps it to a type).</summary>
    internal static int Of(PlanFlags flags) =>
        Fits<Momentum>(flags) ? 1
        : Fits<Plain>(flags) ? 2
        : Fits<Adam>(flags) ? 3
        : Fits<AdamPseudoInverse>(flags) ? 4
        : Fits<Scaled>(flags) ? 5
        : Fits<ScaledPseudoInverse>(flags) ? 6
        : 0;

    private static bool Fits<S>(PlanFlags flags) where S : struct, IPlanShape => (flags & S.Known) == S.Values;

    /// <summary>Calls <paramref name="user"/> with the shape <paramref name="flags"/> select.</summary>
    internal static R With<U, R>(PlanFlags flags, ref U user) where U : struct, IShapeUser<R> =>
        Of(flags) switch {
            1 => user.Use<Momentum>(),
            2 => user.Use<Plain>(),
            3 => user.Use<Adam>(),
            4 => user.Use<AdamPseudoInverse>(),
            5 => user.Use<Scaled>(),
            6 => user.Use<ScaledPseudoInverse>(),
            _ => user.Use<Open>(),
        };

    /// <summary>Whether switch <paramref name="flag"/> is on: fixed by shape <typeparamref name="S"/>, else read from <paramref name="flags"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static bool Is<S>(PlanFlags flags, PlanFlags flag) where S : struct, IPlanShape =>
        (S.Known & flag) != 0 ? (S.Values & flag) != 0 : (flags & flag) != 0;

    /// <summary>The switches of <paramref name="p"/> as bits.</summary>
    internal static PlanFlags Flags(in FusedPlan p) =>
        (p.Maximize ? PlanFlags.Maximize : 0) | (p.Coupled ? PlanFlags.Coupled : 0) | (p.HasM1 ? PlanFlags.HasM1 : 0)
        | (p.Nesterov ? PlanFlags.Nesterov : 0) | (p.Preconditioned ? PlanFlags.Preconditioned : 0)
        | (p.Beta2IsOne ? PlanFlags.Beta2IsOne : 0) | (p.AmsGrad ? PlanFlags.AmsGrad : 0)
        | (p.PseudoInverse ? PlanFlags.PseudoInverse : 0) | (p.EpsInside ? PlanFlags.EpsInside : 0)
        | (p.AfterPreconditioner ? PlanFlags.After : 0) | (p.HasDecay ? PlanFlags.HasDecay : 0);
}
