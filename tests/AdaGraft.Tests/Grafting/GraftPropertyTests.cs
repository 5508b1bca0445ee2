using System;
using System.Collections.Generic;
using System.Linq;
using AdaGraft.Grafting;
using AdaGraft.Optimizers;
using AdaGraft.Tests.Support;
using FluentAssertions;
using TorchSharp;
using TorchSharp.Modules;
using Xunit;
using static TorchSharp.torch;

namespace AdaGraft.Tests.Grafting;

/// <summary>
/// The defining properties of grafting over one table: every (M, D) pair of the catalog × granularity × path.
/// </summary>
public class GraftPropertyTests
{
    private static readonly GraftGranularity[] Granularities = { GraftGranularity.PerTensor, GraftGranularity.Global, GraftGranularity.PerBlock };

    private static GraftOptions Options(GraftGranularity g, GraftPath path) =>
        new() { Granularity = g, Path = path, BlockSize = 4 };

    private static GraftPath[] PathsFor(string m, string d) =>
        ChildCatalog.IsRuleBased(m) && ChildCatalog.IsRuleBased(d)
            ? new[] { GraftPath.ClosedForm, GraftPath.BlackBox }
            : new[] { GraftPath.BlackBox };

    public static TheoryData<string, string, GraftGranularity, GraftPath> Pairs()
    {
        var data = new TheoryData<string, string, GraftGranularity, GraftPath>();
        var names = ChildCatalog.Factories.Keys.ToArray();
        foreach (var m in names)
            foreach (var d in names)
                foreach (var g in Granularities)
                    foreach (var path in PathsFor(m, d))
                        data.Add(m, d, g, path);
        return data;
    }

    public static TheoryData<string, GraftGranularity, GraftPath> Singles()
    {
        var data = new TheoryData<string, GraftGranularity, GraftPath>();
        foreach (var a in ChildCatalog.Factories.Keys)
            foreach (var g in Granularities)
                foreach (var path in PathsFor(a, a))
                    data.Add(a, g, path);
        return data;
    }

    [Theory]
    [MemberData(nameof(Singles))]
    public void GraftOfAWithItselfEqualsA(string a, GraftGranularity g, GraftPath path)
    {
        var w = Fixtures.MakeParameters(Fixtures.Shapes);
        var reference = Fixtures.Clone(w);
        using var graft = new GraftOptimizer(ChildCatalog.Make(a, w), ChildCatalog.Make(a, w), Options(g, path) with { OwnsChildren = true });
        using var alone = ChildCatalog.Make(a, reference);
        for (int step = 0; step < 20; step++) {
            Fixtures.SetGradients(w, step);
            Fixtures.SetGradients(reference, step);
            graft.step();
            alone.step();
        }
        Fixtures.MaxRelativeDifference(w, reference).Should().BeLessThanOrEqualTo(1e-10);
        Fixtures.MaxRelativeDifference(w, Fixtures.MakeParameters(Fixtures.Shapes)).Should().BeGreaterThan(1e-3, "the parameters must have moved");
    }

    /// <summary>
    /// Against independent copies of M and D stepped from the graft's own iterate with the same gradient: the applied
    /// step has M's norm and D's direction, per segment (tensor, block) or globally.
    /// </summary>
    [Theory]
    [MemberData(nameof(Pairs))]
    public void AppliedStepHasNormOfMAndDirectionOfD(string m, string d, GraftGranularity g, GraftPath path)
    {
        var w = Fixtures.MakeParameters(Fixtures.Shapes);
        var wm = Fixtures.Clone(w);
        var wd = Fixtures.Clone(w);
        using var graft = new GraftOptimizer(ChildCatalog.Make(m, w), ChildCatalog.Make(d, w), Options(g, path) with { OwnsChildren = true });
        using var refM = ChildCatalog.Make(m, wm);
        using var refD = ChildCatalog.Make(d, wd);
        for (int step = 0; step < 8; step++) {
            var before = w.Select(p => p.detach().clone()).ToList();
            using (torch.no_grad()) {
                for (int i = 0; i < w.Count; i++) {
                    wm[i].copy_(w[i]);
                    wd[i].copy_(w[i]);
                }
            }
            Fixtures.SetGradients(w, step);
            Fixtures.SetGradients(wm, step);
            Fixtures.SetGradients(wd, step);
            graft.step();
            refM.step();
            refD.step();
            var applied = w.Select((p, i) => (p.detach() - before[i]).reshape(-1)).ToList();
            var dm = wm.Select((p, i) => (p.detach() - before[i]).reshape(-1)).ToList();
            var dd = wd.Select((p, i) => (p.detach() - before[i]).reshape(-1)).ToList();
            var segments = g switch {
                GraftGranularity.Global => new List<(Tensor a, Tensor m, Tensor d)> { (torch.cat(applied.ToArray()), torch.cat(dm.ToArray()), torch.cat(dd.ToArray())) },
                GraftGranularity.PerTensor => applied.Select((a, i) => (a, dm[i], dd[i])).ToList(),
                _ => applied.SelectMany((a, i) => Blocks(a, dm[i], dd[i], 4)).ToList(),
            };
            foreach (var (a, mm, dv) in segments) {
                double na = a.norm().item<double>(), nm = mm.norm().item<double>(), nd = dv.norm().item<double>();
                if (nd == 0) {
                    na.Should().Be(0);
                    continue;
                }
                na.Should().BeApproximately(nm, 1e-6 * Math.Max(nm, 1e-12));
                if (na > 0) {
                    var cos = (a / na - dv / nd).abs().max().item<double>();
                    cos.Should().BeLessThanOrEqualTo(1e-6);
                }
            }
        }
    }

    private static IEnumerable<(Tensor, Tensor, Tensor)> Blocks(Tensor a, Tensor m, Tensor d, long size)
    {
        long n = a.shape[0];
        for (long at = 0; at < n; at += size) {
            long len = Math.Min(size, n - at);
            yield return (a.narrow(0, at, len), m.narrow(0, at, len), d.narrow(0, at, len));
        }
    }

    [Theory]
    [MemberData(nameof(Pairs))]
    public void DirectionLearningRateCancelsOut(string m, string d, GraftGranularity g, GraftPath path)
    {
        var w1 = Fixtures.MakeParameters(Fixtures.Shapes);
        var w2 = Fixtures.Clone(w1);
        using var g1 = new GraftOptimizer(ChildCatalog.Make(m, w1), ChildCatalog.Make(d, w1), Options(g, path) with { OwnsChildren = true });
        using var g2 = new GraftOptimizer(ChildCatalog.Make(m, w2), ChildCatalog.Make(d, w2, lrScale: 123), Options(g, path) with { OwnsChildren = true });
        for (int step = 0; step < 10; step++) {
            Fixtures.SetGradients(w1, step);
            Fixtures.SetGradients(w2, step);
            g1.step();
            g2.step();
        }
        Fixtures.MaxRelativeDifference(w1, w2).Should().BeLessThanOrEqualTo(1e-9);
    }

    public static TheoryData<string, string, GraftGranularity> RulePairs()
    {
        var data = new TheoryData<string, string, GraftGranularity>();
        var names = ChildCatalog.Factories.Keys.Where(ChildCatalog.IsRuleBased).ToArray();
        foreach (var m in names)
            foreach (var d in names)
                foreach (var g in Granularities)
                    data.Add(m, d, g);
        return data;
    }

    [Theory]
    [MemberData(nameof(RulePairs))]
    public void ClosedFormEqualsBlackBox(string m, string d, GraftGranularity g)
    {
        var w1 = Fixtures.MakeParameters(Fixtures.Shapes);
        var w2 = Fixtures.Clone(w1);
        using var closed = new GraftOptimizer(ChildCatalog.Make(m, w1), ChildCatalog.Make(d, w1), Options(g, GraftPath.ClosedForm) with { OwnsChildren = true });
        using var box = new GraftOptimizer(ChildCatalog.Make(m, w2), ChildCatalog.Make(d, w2), Options(g, GraftPath.BlackBox) with { OwnsChildren = true });
        closed.IsClosedForm.Should().BeTrue();
        box.IsClosedForm.Should().BeFalse();
        for (int step = 0; step < 20; step++) {
            Fixtures.SetGradients(w1, step);
            Fixtures.SetGradients(w2, step);
            closed.step();
            box.step();
        }
        Fixtures.MaxRelativeDifference(w1, w2).Should().BeLessThanOrEqualTo(1e-9);
    }

    [Theory]
    [MemberData(nameof(Pairs))]
    public void ZeroAndMissingGradientsDoNotMoveOrPoison(string m, string d, GraftGranularity g, GraftPath path)
    {
        var w = Fixtures.MakeParameters(Fixtures.Shapes);
        using var graft = new GraftOptimizer(ChildCatalog.Make(m, w), ChildCatalog.Make(d, w), Options(g, path) with { OwnsChildren = true });
        for (int step = 0; step < 12; step++) {
            // Tensor 1 has a zero gradient on even steps; tensor 2 has no gradient at all on steps 3..5.
            Fixtures.SetGradients(w, step, zeroAt: (i, s) => i == 1 && s % 2 == 0);
            if (step is >= 3 and <= 5) w[2].grad = null;
            var before = Fixtures.Snapshot(w);
            graft.step();
            var after = Fixtures.Snapshot(w);
            after.SelectMany(x => x).Should().OnlyContain(v => double.IsFinite(v));
            // ε = 0 children move a coordinate only when its accumulator is non-zero; SGD-like ones only with a gradient.
            if (step % 2 == 0 && step == 0) after[1].Should().Equal(before[1], "a zero gradient at the first step moves nothing");
            if (step is >= 3 and <= 5) after[2].Should().Equal(before[2], "a tensor without a gradient is skipped");
        }
    }
}
