namespace AdaGraft.Tests.Support;

/// <summary>The two run-and-compare loops that the grafting tests share.</summary>
public static class GraftHarness
{
    /// <summary>
    /// Runs <paramref name="a"/> and <paramref name="b"/> on identical parameters with identical gradient streams for
    /// <paramref name="steps"/> steps and returns the largest relative difference of the parameters; asserts that the
    /// parameters moved (a comparison of two idle runs proves nothing). <paramref name="shapes"/>: the parameters'
    /// shapes (default <see cref="Fixtures.Shapes"/>).
    /// </summary>
    public static double Divergence(Func<List<Parameter>, optim.Optimizer> a, Func<List<Parameter>, optim.Optimizer> b, int steps, long[][]? shapes = null)
    {
        shapes ??= Fixtures.Shapes;
        var wa = Fixtures.MakeParameters(shapes);
        var wb = Fixtures.Clone(wa);
        using var oa = a(wa);
        using var ob = b(wb);
        Fixtures.RunAll(0, steps, (wa, oa), (wb, ob));
        Fixtures.MaxRelativeDifference(wa, Fixtures.MakeParameters(shapes)).Should().BeGreaterThan(1e-3, "the parameters must have moved");
        return Fixtures.MaxRelativeDifference(wa, wb);
    }

    /// <summary>
    /// Steps the graft and independent copies of M and D, each copy reset to the graft's own iterate and given the same
    /// gradient, and asserts per segment (tensor, block of <paramref name="blockSize"/>, or all tensors together) that
    /// the applied step has ‖ΔM‖ and the direction of ΔD, to <paramref name="tolerance"/>.
    /// </summary>
    public static void AssertNormOfMAndDirectionOfD(Func<List<Parameter>, GraftOptimizer> graft, Func<List<Parameter>, optim.Optimizer> m,
        Func<List<Parameter>, optim.Optimizer> d, GraftGranularity granularity, long blockSize, int steps, double tolerance)
    {
        var w = Fixtures.MakeParameters(Fixtures.Shapes);
        var wm = Fixtures.Clone(w);
        var wd = Fixtures.Clone(w);
        using var g = graft(w);
        using var refM = m(wm);
        using var refD = d(wd);
        for (int step = 0; step < steps; step++) {
            using var scope = torch.NewDisposeScope();
            var before = w.Select(p => p.detach().clone()).ToList();
            StepAlongside(g, w, refM, wm, refD, wd, step);
            var applied = w.Select((p, i) => (p.detach() - before[i]).reshape(-1)).ToList();
            var dm = wm.Select((p, i) => (p.detach() - before[i]).reshape(-1)).ToList();
            var dd = wd.Select((p, i) => (p.detach() - before[i]).reshape(-1)).ToList();
            var segments = granularity switch {
                GraftGranularity.Global => new List<(Tensor a, Tensor m, Tensor d)> { (torch.cat(applied.ToArray()), torch.cat(dm.ToArray()), torch.cat(dd.ToArray())) },
                GraftGranularity.PerTensor => applied.Select((a, i) => (a, dm[i], dd[i])).ToList(),
                _ => applied.SelectMany((a, i) => Blocks(a, dm[i], dd[i], blockSize)).ToList(),
            };
            foreach (var (a, mm, dv) in segments) {
                double na = a.norm().item<double>(), nm = mm.norm().item<double>(), nd = dv.norm().item<double>();
                if (nd == 0) {
                    na.Should().Be(0, $"step {step}: D proposed no move");
                    continue;
                }
                na.Should().BeApproximately(nm, tolerance * Math.Max(nm, 1e-12), $"step {step}: the norm is M's");
                if (na > 0) (a / na - dv / nd).abs().max().item<double>().Should().BeLessThanOrEqualTo(tolerance, $"step {step}: the direction is D's");
            }
        }
    }

    /// <summary>
    /// One step of <paramref name="graft"/> over <paramref name="w"/> and of standalone copies of M and D over their own
    /// parameters, each copy first reset to the graft's iterate; all three get step <paramref name="step"/>'s gradient.
    /// </summary>
    public static void StepAlongside(GraftOptimizer graft, List<Parameter> w, optim.Optimizer refM, List<Parameter> wm,
        optim.Optimizer refD, List<Parameter> wd, int step)
    {
        using (torch.no_grad()) {
            for (int i = 0; i < w.Count; i++) {
                wm[i].copy_(w[i]);
                wd[i].copy_(w[i]);
            }
        }
        Fixtures.StepAll(step, (w, graft), (wm, refM), (wd, refD));
    }

    private static IEnumerable<(Tensor, Tensor, Tensor)> Blocks(Tensor a, Tensor m, Tensor d, long size)
    {
        long n = a.shape[0];
        for (long at = 0; at < n; at += size) {
            long len = Math.Min(size, n - at);
            yield return (a.narrow(0, at, len), m.narrow(0, at, len), d.narrow(0, at, len));
        }
    }
}
