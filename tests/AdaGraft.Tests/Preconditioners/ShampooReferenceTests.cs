using AdaGraft.Rules;

namespace AdaGraft.Tests.Preconditioners;

/// <summary>
/// Blocked tensors, higher-order factors and convolution kernels against a plain reference written here: blocks cut
/// by hand-listed ranges, factors from explicit unfoldings, roots by SVD (not eigh), preconditioning by
/// <c>einsum</c> (not matmul or tensordot), AdaGrad grafting per block; 6 float64 steps, 1e-10 relative.
/// </summary>
public sealed class ShampooReferenceTests
{
    /// <summary>A case: parameter shape, merged shape, the ranges each merged dimension is cut into, options.</summary>
    private sealed record BlockCase(long[] Shape, long[] Merged, (long start, long size)[][] Pieces, int MaxDim, int SkipAbove = 0);

    private static readonly Dictionary<string, BlockCase> Cases = new() {
        // 5×7 in blocks of at most 3: rows 3 + 2, columns 3 + 3 + 1 (six blocks, four of them not square).
        ["matrix-blocked"] = new BlockCase(new long[] { 5, 7 }, new long[] { 5, 7 }, new[] { new[] { (0L, 3L), (3L, 2L) }, new[] { (0L, 3L), (3L, 3L), (6L, 1L) } }, 3),
        // The same with blocks of side > 2 left to AdaGrad: only the 2×1 block is preconditioned.
        ["matrix-blocked-skip"] = new BlockCase(new long[] { 5, 7 }, new long[] { 5, 7 }, new[] { new[] { (0L, 3L), (3L, 2L) }, new[] { (0L, 3L), (3L, 3L), (6L, 1L) } }, 3, 2),
        // A 4-d convolution kernel out×in×kh×kw: merged into one dimension of 216 by the greedy merge, so out × rest.
        ["conv-kernel"] = new BlockCase(new long[] { 6, 4, 3, 3 }, new long[] { 6, 36 }, new[] { new[] { (0L, 6L) }, new[] { (0L, 36L) } }, 1024),
        // The same kernel with max_preconditioner_dim 8: nothing merges (6·4 > 8, 4·3 > 8, 3·3 > 8): four factors, −1/8.
        ["conv-kernel-order-4"] = new BlockCase(new long[] { 6, 4, 3, 3 }, new long[] { 6, 4, 3, 3 }, new[] { new[] { (0L, 6L) }, new[] { (0L, 4L) }, new[] { (0L, 3L) }, new[] { (0L, 3L) } }, 8),
        // 10×3×4 with max 8: [10, 3, 4] (order 3), the first dimension cut 8 + 2.
        ["order-3-blocked"] = new BlockCase(new long[] { 10, 3, 4 }, new long[] { 10, 3, 4 }, new[] { new[] { (0L, 8L), (8L, 2L) }, new[] { (0L, 3L) }, new[] { (0L, 4L) } }, 8),
    };

    public static TheoryData<string> Names => new(Cases.Keys);

    [Theory]
    [MemberData(nameof(Names))]
    public void ShampooEqualsThePlainReference(string name)
    {
        var c = Cases[name];
        const double lr = 0.05, eps = 1e-12, epsG = 1e-10;
        var ours = Fixtures.MakeParameters(new[] { c.Shape });
        var reference = Fixtures.Clone(ours);
        var before = Fixtures.Clone(ours);
        using var opt = ShampooOptimizer.Create(ours, lr: lr, max_preconditioner_dim: c.MaxDim, skip_preconditioning_dim_size_gt: c.SkipAbove);
        var r = new Reference(c, eps);
        using var v = torch.zeros(c.Shape, ScalarType.Float64);
        for (int step = 0; step < 6; step++) {
            Fixtures.SetGradients(ours, step);
            Fixtures.SetGradients(reference, step);
            opt.step();
            using var scope = torch.NewDisposeScope();
            var g = reference[0].grad!;
            v.add_(g.mul(g));
            var a = g.div(v.sqrt().add(epsG));
            var d = r.GraftedDirection(g.reshape(c.Merged), a.reshape(c.Merged));
            using (torch.no_grad()) reference[0].sub_(d.reshape(c.Shape).mul(lr));
        }
        var state = opt.StateOf(ours[0]);
        state.MergedShape.Should().Equal(c.Merged);
        state.BlockCount.Should().Be(c.Pieces.Aggregate(1, (n, p) => n * p.Length));
        Fixtures.MaxRelativeDifference(ours, reference).Should().BeLessThanOrEqualTo(1e-10);
        Fixtures.MaxRelativeDifference(ours, before).Should().BeGreaterThan(1e-2);
        opt.RootFailures.Should().Be(0);
    }

    /// <summary>The reference: factors and roots per block as separate tensors, kept by block index.</summary>
    private sealed class Reference(BlockCase c, double eps)
    {
        private readonly Dictionary<string, Tensor[]> _factors = new();

        public Tensor GraftedDirection(Tensor g, Tensor a)
        {
            var d = a.clone();
            int k = c.Merged.Length;
            foreach (var block in Blocks()) {
                var gb = Slice(g, block);
                if (c.SkipAbove > 0 && block.Any(p => p.size > c.SkipAbove)) continue;
                string key = string.Join(",", block.Select(p => p.start));
                if (!_factors.TryGetValue(key, out var factors)) {
                    factors = block.Select(p => torch.zeros(p.size, p.size, ScalarType.Float64).DetachFromDisposeScope()).ToArray();
                    _factors[key] = factors;
                }
                var roots = new Tensor[k];
                for (int dim = 0; dim < k; dim++) {
                    var order = new[] { (long)dim }.Concat(Enumerable.Range(0, k).Where(i => i != dim).Select(i => (long)i)).ToArray();
                    var unfolded = gb.permute(order).reshape(block[dim].size, -1);
                    factors[dim].add_(unfolded.matmul(unfolded.t()));
                    var (u, s, _) = torch.linalg.svd(factors[dim]);
                    roots[dim] = u.mul(s.add(eps).pow(-1.0 / (2 * k)).unsqueeze(0)).matmul(u.t());
                }
                // "ia,jb,ij->ab" for matrices: Σ L̃[i,a]·G[i,j]·R̃[j,b] = (L̃·G·R̃)[a,b] (roots are symmetric).
                string ins = "ijkl"[..k], outs = "abcd"[..k];
                string equation = string.Join(",", Enumerable.Range(0, k).Select(i => $"{ins[i]}{outs[i]}")) + $",{ins}->{outs}";
                var p = torch.einsum(equation, roots.Append(gb).ToArray());
                var ab = Slice(a, block);
                Slice(d, block).copy_(p.mul(ab.norm().item<double>() / p.norm().item<double>()));
            }
            return d;
        }

        private IEnumerable<(long start, long size)[]> Blocks()
        {
            IEnumerable<(long start, long size)[]> all = new[] { Array.Empty<(long, long)>() };
            foreach (var pieces in c.Pieces) all = all.SelectMany(prefix => pieces.Select(p => prefix.Append(p).ToArray()));
            return all;
        }

        private static Tensor Slice(Tensor t, (long start, long size)[] block)
        {
            for (int dim = 0; dim < block.Length; dim++) t = t.narrow(dim, block[dim].start, block[dim].size);
            return t;
        }
    }
}
