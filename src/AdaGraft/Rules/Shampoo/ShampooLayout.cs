namespace AdaGraft.Rules;

/// <summary>
/// How Shampoo sees one tensor: its shape with size-1 dimensions dropped and neighbours merged while their product
/// stays within <c>max_preconditioner_dim</c>, then cut into blocks of at most <c>max_preconditioner_dim</c> per side.
/// A tensor whose merged shape has fewer than two dimensions (a scalar or vector) has no blocks: it takes the grafting
/// method's direction. Pure bookkeeping on the host; the factors of every block live packed in one flat slot.
/// </summary>
internal sealed class ShampooLayout
{
    private ShampooLayout(long[] merged, ShampooBlock[] blocks, long factorElements, int maxDim, int skipAbove)
    {
        Merged = merged;
        Blocks = blocks;
        FactorElements = factorElements;
        MaxDim = maxDim;
        SkipAbove = skipAbove;
    }

    /// <summary>The merged shape (rank ≥ 2 when the tensor is preconditioned).</summary>
    public long[] Merged { get; }

    /// <summary>The blocks, in row-major order of their block indices (empty for scalars and vectors).</summary>
    public ShampooBlock[] Blocks { get; }

    /// <summary>Elements of the packed factor slot (and of the packed root slot): Σ over blocks and dimensions of n².</summary>
    public long FactorElements { get; }

    /// <summary>The number of factors per block (the merged rank), k in the exponent −1/(2k).</summary>
    public int Order => Merged.Length;

    /// <summary>True when some block has factors.</summary>
    public bool Preconditioned => FactorElements > 0;

    /// <summary>The <c>max_preconditioner_dim</c> this layout was built for.</summary>
    public int MaxDim { get; }

    /// <summary>The <c>skip_preconditioning_dim_size_gt</c> this layout was built for (0: none).</summary>
    public int SkipAbove { get; }

    /// <summary>
    /// Size-1 dimensions dropped, then each next dimension merged into the previous one while their product is at most
    /// <paramref name="maxDim"/> (greedy, left to right, as distributed_shampoo's merge of small dimensions). A tensor
    /// of two or more dimensions stays a matrix at least: where the merge would leave one dimension (a small
    /// convolution kernel [4, 3, 3, 3] → [108]), it becomes first dimension × the rest ([4, 27]) instead.
    /// </summary>
    public static long[] MergeDims(long[] shape, int maxDim)
    {
        var squeezed = shape.Where(d => d != 1).ToArray();
        var merged = new List<long>();
        foreach (var d in squeezed) {
            if (merged.Count > 0 && merged[^1] * d <= maxDim) merged[^1] *= d;
            else merged.Add(d);
        }
        if (merged.Count == 1 && squeezed.Length >= 2) return new[] { squeezed[0], squeezed.Skip(1).Aggregate(1L, (a, b) => a * b) };
        return merged.ToArray();
    }

    /// <summary>The layout of a tensor of <paramref name="shape"/>.</summary>
    public static ShampooLayout For(long[] shape, int maxDim, int skipAbove)
    {
        var merged = MergeDims(shape, maxDim);
        if (merged.Length < 2 || merged.Contains(0)) return new ShampooLayout(merged, Array.Empty<ShampooBlock>(), 0, maxDim, skipAbove);
        // Cut each dimension into pieces of at most maxDim.
        var pieces = merged.Select(n => Enumerable.Range(0, (int)((n + maxDim - 1) / maxDim))
            .Select(i => (start: (long)i * maxDim, size: Math.Min(maxDim, n - (long)i * maxDim))).ToArray()).ToArray();
        var blocks = new List<ShampooBlock>();
        long offset = 0;
        var index = new int[merged.Length];
        while (true) {
            var start = new long[merged.Length];
            var size = new long[merged.Length];
            for (int d = 0; d < merged.Length; d++) (start[d], size[d]) = pieces[d][index[d]];
            bool skipped = skipAbove > 0 && size.Any(n => n > skipAbove);
            var offsets = new long[merged.Length];
            for (int d = 0; d < merged.Length; d++) {
                offsets[d] = offset;
                if (!skipped) offset += size[d] * size[d];
            }
            blocks.Add(new ShampooBlock(start, size, skipped ? null : offsets));
            int carry = merged.Length - 1;
            while (carry >= 0 && ++index[carry] == pieces[carry].Length) index[carry--] = 0;
            if (carry < 0) break;
        }
        return new ShampooLayout(merged, blocks.ToArray(), offset, maxDim, skipAbove);
    }

    /// <summary>Block <paramref name="block"/>'s part of <paramref name="mergedView"/> (a view).</summary>
    public static Tensor Slice(Tensor mergedView, ShampooBlock block)
    {
        var t = mergedView;
        for (int d = 0; d < block.Size.Length; d++) t = t.narrow(d, block.Start[d], block.Size[d]);
        return t;
    }
}

/// <summary>One block of a Shampoo tensor: where it starts, its size per merged dimension, and where its factors lie.</summary>
/// <param name="Start">First index per merged dimension.</param>
/// <param name="Size">Extent per merged dimension.</param>
/// <param name="FactorOffsets">Offset of each dimension's n×n factor in the packed slots; null for a block that
/// takes the grafting direction (a side above <c>skip_preconditioning_dim_size_gt</c>).</param>
internal sealed record ShampooBlock(long[] Start, long[] Size, long[]? FactorOffsets)
{
    /// <summary>The n×n matrix of dimension <paramref name="dim"/> inside a packed slot (a view).</summary>
    public Tensor Matrix(Tensor packed, int dim)
    {
        long n = Size[dim];
        return packed.narrow(0, FactorOffsets![dim], n * n).view(n, n);
    }
}
