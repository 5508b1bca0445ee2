namespace AdaGraft.Grafting;

/// <summary>Over which set of coordinates the norms ‖ΔM‖ and ‖ΔD‖ are taken.</summary>
public enum GraftGranularity
{
    /// <summary>One ratio per tensor (the paper's layer-wise grafting; default).</summary>
    PerTensor = 0,

    /// <summary>One ratio for all parameters together (the paper's global grafting).</summary>
    Global = 1,

    /// <summary>One ratio per block of <see cref="GraftOptions.BlockSize"/> consecutive elements of each tensor
    /// (the last block of a tensor may be shorter), as Distributed Shampoo grafts per block.</summary>
    PerBlock = 2,
}

/// <summary>How the two proposals are obtained.</summary>
public enum GraftPath
{
    /// <summary>Closed form when both children are this library's rule-based optimizers, black box otherwise.</summary>
    Auto = 0,

    /// <summary>Algorithm 3: save w, step M in place, measure, restore, step D in place, measure, combine.
    /// Works with any optimizer that updates parameters in place.</summary>
    BlackBox = 1,

    /// <summary>Both children propose their steps without touching the parameters (rule-based children only).</summary>
    ClosedForm = 2,
}

/// <summary>Where, on the closed-form path, the two proposals are grafted.</summary>
public enum GraftPoint
{
    /// <summary>Graft the children's full steps, momentum included (the paper's definition; default).</summary>
    AfterMomentum = 0,

    /// <summary>
    /// Graft the children's momentum-free steps (their preconditioned gradients), then apply one heavy-ball momentum
    /// of <see cref="GraftOptions.Momentum"/> to the grafted step, as the Shampoo grafting implementations do. The
    /// children must have no momentum of their own (β1 = 0); closed-form path only.
    /// </summary>
    BeforeMomentum = 1,
}

/// <summary>Options of a <see cref="GraftOptimizer"/>; validated when the optimizer is built.</summary>
public sealed record GraftOptions
{
    /// <summary>Layer-wise (default), global or per block.</summary>
    public GraftGranularity Granularity { get; init; } = GraftGranularity.PerTensor;

    /// <summary>Elements per block for <see cref="GraftGranularity.PerBlock"/> (default 4096).</summary>
    public long BlockSize { get; init; } = 4096;

    /// <summary>
    /// ε added to ‖ΔD‖ in the ratio ‖ΔM‖/(‖ΔD‖ + ε). Default 0: where ‖ΔD‖ = 0 the ratio is 0 (no move, no NaN), and
    /// Graft(A, A) equals A to round-off.
    /// </summary>
    public double Epsilon { get; init; }

    /// <summary>Which way proposals are obtained.</summary>
    public GraftPath Path { get; init; } = GraftPath.Auto;

    /// <summary>Where the proposals are grafted (closed-form path); default after momentum.</summary>
    public GraftPoint Point { get; init; } = GraftPoint.AfterMomentum;

    /// <summary>The graft's own momentum β in [0, 1) for <see cref="GraftPoint.BeforeMomentum"/> (default 0.9):
    /// <c>buf ← β·buf + grafted step; w ← w + buf</c>.</summary>
    public double Momentum { get; init; } = 0.9;

    /// <summary>
    /// On (default): when every tensor with a gradient is a contiguous float32/float64 CPU tensor, the graft's own
    /// passes over memory are fused. Closed form (both children <see cref="Optimizers.GenericSecondMomentOptimizer"/>s
    /// with their own <c>FusedCpuKernel</c> on): two passes (propose both and measure; apply) instead of about a
    /// dozen eager operations per tensor. Black box: the children step as usual, measuring M's step and restoring the
    /// parameters is one pass, and measuring D's step and combining run back to back per tensor (or block) while it
    /// is still in cache. The numbers agree with the eager path to round-off; the norms in
    /// <see cref="GraftOptimizer.LastNorms"/> are accumulated in float64 and summed in a fixed order (independent of
    /// the thread count). Off: always eager (what CUDA and half precision use anyway). The kernels write through the
    /// tensors' data pointers and then advance the autograd version counter of every tensor they wrote, so a backward
    /// pass through a graph that saw the old values raises, as on the eager path. A black-box child must update
    /// its parameters in place; one that leaves a parameter strided or of another dtype is reported (the parameters
    /// are restored) and can be grafted with this option off. The process-wide switch
    /// <see cref="Rules.CpuSwitches.FusedKernels"/> (<c>ADAGRAFT_FUSED_CPU=0</c>) turns the fused passes off for every
    /// graft, whatever this says.
    /// </summary>
    public bool FusedCpuKernel { get; init; } = true;

    /// <summary>When true, disposing the graft disposes both children.</summary>
    public bool OwnsChildren { get; init; }

    /// <summary>
    /// For sharded optimizer state (each process steps part of the parameters): the caller's all-reduce of the squared
    /// norms a ratio needs, called once per step on every shard, before any parameter moves. It receives a 1-d tensor
    /// and must sum it across shards <em>in place</em> (same shape, dtype and device; every shard must call its
    /// collective in the same order, so the sums come out bit-identical everywhere). Default null: no reduction.
    /// </summary>
    /// <remarks>
    /// <para>The vector holds squared norms (Σ ΔM², Σ ΔD²) of this shard's parameters only:</para>
    /// <list type="bullet">
    /// <item><see cref="GraftGranularity.Global"/>: two entries, <c>[Σ ΔM², Σ ΔD²]</c> over all of this shard's
    /// tensors. Shards may own any parameters (whole tensors or pieces).</item>
    /// <item><see cref="GraftGranularity.PerTensor"/>: <c>2n + 2</c> entries for a graft over n parameters,
    /// <c>[ΔM²₀ … ΔM²ₙ₋₁, ΔD²₀ … ΔD²ₙ₋₁, Σ ΔM², Σ ΔD²]</c> (0 for a parameter without a gradient). Parameter i of every
    /// shard must be a piece of the same logical tensor i (each shard owns one part, possibly empty, of every tensor,
    /// in the same order), so that the reduced entry i is the whole tensor's squared norm.</item>
    /// <item><see cref="GraftGranularity.PerBlock"/>: not allowed (blocks lie inside one shard's piece; such a graft
    /// needs no reduction).</item>
    /// </list>
    /// <para>The tensor is float64, on the CPU when the fused CPU path measures, otherwise on the parameters' device
    /// (the first one with a gradient): the eager path passes the device tensor, so the hook adds no host-device
    /// synchronisation of its own (an all-reduce enqueued on the device stream keeps it that way).
    /// With a hook, <see cref="GraftOptimizer.LastNorms"/> reports the reduced (whole-model) values: under per-tensor
    /// grafting every entry; under global grafting the global values, the per-tensor ones staying this shard's. If
    /// the hook throws, the step stops with the children's state already advanced (as after a failed collective
    /// in any distributed run): restore from a checkpoint. Not combinable with
    /// <see cref="GraftOptimizer.SkipNonFiniteSteps"/> (a skip would be decided per shard).</para>
    /// </remarks>
    public Action<torch.Tensor>? ReduceSquaredNorms { get; init; }

    /// <summary>Throws <see cref="ArgumentException"/> naming the first invalid option.</summary>
    public void Validate()
    {
        if (!Enum.IsDefined(Granularity))
            throw new ArgumentOutOfRangeException(nameof(Granularity), Granularity, "Granularity must be PerTensor, Global or PerBlock.");
        if (!Enum.IsDefined(Path))
            throw new ArgumentOutOfRangeException(nameof(Path), Path, "Path must be Auto, BlackBox or ClosedForm.");
        if (Granularity == GraftGranularity.PerBlock && BlockSize < 1)
            throw new ArgumentOutOfRangeException(nameof(BlockSize), BlockSize, "BlockSize must be at least 1 for per-block grafting; e.g. 4096.");
        if (!Enum.IsDefined(Point))
            throw new ArgumentOutOfRangeException(nameof(Point), Point, "Point must be AfterMomentum or BeforeMomentum.");
        if (double.IsNaN(Momentum) || Momentum < 0 || Momentum >= 1)
            throw new ArgumentOutOfRangeException(nameof(Momentum), Momentum, "Momentum must lie in [0, 1); e.g. 0.9.");
        if (Point == GraftPoint.BeforeMomentum && Path == GraftPath.BlackBox)
            throw new ArgumentException("GraftPoint.BeforeMomentum needs the closed-form path; use GraftPath.ClosedForm or Auto with rule-based children.", nameof(Point));
        if (ReduceSquaredNorms is not null && Granularity == GraftGranularity.PerBlock)
            throw new ArgumentException("ReduceSquaredNorms works with PerTensor or Global granularity; per-block ratios lie inside one shard's piece and need no reduction, so leave ReduceSquaredNorms null.", nameof(ReduceSquaredNorms));
        if (double.IsNaN(Epsilon) || double.IsInfinity(Epsilon) || Epsilon < 0)
            throw new ArgumentOutOfRangeException(nameof(Epsilon), Epsilon, "Epsilon must be a finite number ≥ 0; use 0 (the default) for an exact graft.");
    }
}
