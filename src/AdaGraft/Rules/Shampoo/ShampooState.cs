namespace AdaGraft.Rules;

/// <summary>
/// Per-tensor state of Shampoo. Slots: <c>factors</c> and <c>roots</c> (every block's Kronecker factors L, R, … and
/// their inverse roots, packed into one flat tensor each; absent for scalars and vectors), <c>filtered_grad</c> (G̃,
/// with β1 &gt; 0), <c>graft_second_moment</c> (V of AdaGrad, RMSprop or Adam grafting) and <c>momentum</c>
/// (with μ &gt; 0). One host value: the number of failed root computations (<see cref="RootFailures"/>). All are
/// saved, loaded and moved by <c>to(device)</c> with the rest of the optimizer.
/// </summary>
public sealed class ShampooState : RuleState
{
    internal const int Factors = 0, Roots = 1, Filtered = 2, GraftMoment = 3, MomentumBuffer = 4;
    internal const int Direction = 0;
    private ShampooOptions? _options;
    private ShampooLayout? _layout;
    private (int maxDim, int skip)? _builtFor;
    private Tensor? _loadedFactors;

    /// <summary>Creates the state of <paramref name="parameter"/>.</summary>
    public ShampooState(Parameter parameter)
        : base(parameter, new[] { "factors", "roots", "filtered_grad", "graft_second_moment", "momentum" }, 1, 1)
    {
    }

    /// <summary>Root computations that failed in float32 and float64 alike (or met a non-finite factor) and kept the previous root.</summary>
    public long RootFailures => (long)HostValues[0];

    internal void CountRootFailure() => HostValues[0]++;

    /// <summary>True when the tensor has preconditioned blocks (its merged shape has at least two dimensions).</summary>
    public bool Preconditioned => Layout.Preconditioned;

    /// <summary>The merged shape Shampoo preconditions (size-1 dimensions dropped, small neighbours merged).</summary>
    public long[] MergedShape => (long[])Layout.Merged.Clone();

    /// <summary>The number of blocks (0 for scalars and vectors).</summary>
    public int BlockCount => Layout.Blocks.Length;

    /// <summary>
    /// The factor of merged dimension <paramref name="dim"/> of block <paramref name="block"/> (L for dimension 0, R for
    /// dimension 1 of a matrix), as a new view of the state (dispose it); null before allocation or for a block without factors.
    /// </summary>
    public Tensor? Factor(int block, int dim) => Matrix(Factors, block, dim);

    /// <summary>The inverse root L̃ (or R̃, …) in use for that factor, as a view (dispose it); identity before the first root.</summary>
    public Tensor? Root(int block, int dim) => Matrix(Roots, block, dim);

    private Tensor? Matrix(int slot, int block, int dim)
    {
        var b = Layout.Blocks[block];
        return GetSlot(slot) is Tensor s && b.FactorOffsets is not null ? b.Matrix(s, dim) : null;
    }

    /// <summary>The layout under the group's current <c>max_preconditioner_dim</c> and skip limit.</summary>
    internal ShampooLayout Layout {
        get {
            var o = _options ?? throw new InvalidOperationException("The Shampoo state was not initialised with its options.");
            int maxDim = o.MaxPreconditionerDim!.Value, skip = o.SkipPreconditioningDimSizeGt!.Value;
            if (_layout is null || _layout.MaxDim != maxDim || _layout.SkipAbove != skip) _layout = ShampooLayout.For(Parameter.shape, maxDim, skip);
            return _layout;
        }
    }

    /// <inheritdoc />
    public override void Initialize(OptimizerOptions options)
    {
        ThrowIfDisposed();
        _options = (ShampooOptions)options;
        ClearSlots();
        HostValues[0] = 0;
        _builtFor = (Layout.MaxDim, Layout.SkipAbove);
        if (Layout.Preconditioned) {
            EnsureSlot(Factors);
            RootsSlot();
        }
    }

    /// <summary>The packed roots, allocated on first use with every root the identity.</summary>
    internal Tensor RootsSlot()
    {
        if (SlotAt(Roots) is Tensor existing) return existing;
        var roots = EnsureSlot(Roots);
        using var scope = torch.NewDisposeScope();
        foreach (var b in Layout.Blocks) {
            if (b.FactorOffsets is null) continue;
            for (int d = 0; d < b.Size.Length; d++) b.Matrix(roots, d).copy_(torch.eye(b.Size[d], dtype: roots.dtype, device: roots.device));
        }
        return roots;
    }

    /// <summary>
    /// Throws when the group's <c>max_preconditioner_dim</c> or <c>skip_preconditioning_dim_size_gt</c> changed after
    /// this state's factors were built for other blocks (before anything changes; a loaded checkpoint's factors belong
    /// to the options loaded with them).
    /// </summary>
    protected override void CheckStructure(int index)
    {
        var current = (Layout.MaxDim, Layout.SkipAbove);
        var factors = SlotAt(Factors);
        if (factors is null || ReferenceEquals(factors, _loadedFactors)) {
            _builtFor = current;
            _loadedFactors = null;
            return;
        }
        if (_builtFor is { } built && built != current)
            throw new InvalidOperationException(
                $"The Shampoo factors of the {TensorLayout.Describe(Parameter, index)} were built for max_preconditioner_dim {built.maxDim} "
                + $"and skip_preconditioning_dim_size_gt {built.skip}, but its group now has {current.Item1} and {current.Item2}: the blocks "
                + "cannot change during training. Set the options back, or build a new optimizer.");
    }

    /// <inheritdoc />
    protected override void CheckLoadedSlots(long steps, Tensor?[] slots)
    {
        ArgumentNullException.ThrowIfNull(slots);
        _loadedFactors = slots[Factors];
    }

    /// <inheritdoc />
    protected override bool SlotsShapedLikeParameter => false;

    /// <inheritdoc />
    protected override long[] ExpectedSlotShape(int index) =>
        index is Factors or Roots ? new[] { Layout.FactorElements } : base.ExpectedSlotShape(index);

    internal Tensor? Existing(int index) => SlotAt(index);
}
