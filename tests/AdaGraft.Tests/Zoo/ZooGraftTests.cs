using System.Linq;
using AdaGraft.Grafting;
using AdaGraft.Tests.Support;
using FluentAssertions;
using Xunit;

namespace AdaGraft.Tests.Zoo;

/// <summary>Every zoo rule inside grafting, on both paths.</summary>
public class ZooGraftTests
{
    private static GraftOptions Options(GraftGranularity g, GraftPath path) =>
        new() { Granularity = g, Path = path, BlockSize = 4, OwnsChildren = true };

    public static TheoryData<string, GraftPath> SelfGraftCases()
    {
        var data = new TheoryData<string, GraftPath>();
        foreach (var name in ZooCatalog.Factories.Keys) {
            data.Add(name, GraftPath.ClosedForm);
            data.Add(name, GraftPath.BlackBox);
        }
        return data;
    }

    /// <summary>Graft(A, A′) = A, where A′ is A with three times the learning rate (D's learning rate cancels).</summary>
    [Theory]
    [MemberData(nameof(SelfGraftCases))]
    public void GraftOfAWithScaledAEqualsA(string a, GraftPath path)
    {
        var w = Fixtures.MakeParameters(Fixtures.Shapes);
        var reference = Fixtures.Clone(w);
        using var graft = new GraftOptimizer(ZooCatalog.Make(a, w), ZooCatalog.Make(a, w, lrScale: 3), Options(GraftGranularity.PerTensor, path));
        graft.IsClosedForm.Should().Be(path == GraftPath.ClosedForm);
        using var alone = ZooCatalog.Make(a, reference);
        for (int step = 0; step < 20; step++) {
            Fixtures.SetGradients(w, step);
            Fixtures.SetGradients(reference, step);
            graft.step();
            alone.step();
        }
        Fixtures.MaxRelativeDifference(w, reference).Should().BeLessThanOrEqualTo(1e-10);
        Fixtures.MaxRelativeDifference(w, Fixtures.MakeParameters(Fixtures.Shapes)).Should().BeGreaterThan(1e-3, "the parameters must have moved");
    }

    public static TheoryData<string, bool, GraftGranularity> AdaGradPairs()
    {
        var data = new TheoryData<string, bool, GraftGranularity>();
        foreach (var name in ZooCatalog.Factories.Keys) {
            foreach (var g in new[] { GraftGranularity.PerTensor, GraftGranularity.Global, GraftGranularity.PerBlock }) {
                data.Add(name, false, g);
            }
            data.Add(name, true, GraftGranularity.PerTensor);
        }
        return data;
    }

    /// <summary>
    /// Graft(AdaGrad, A) (and, with <paramref name="zooIsMagnitude"/>, Graft(A, AdaGrad)): the closed form, built from
    /// the rules' proposals, equals the black box, which steps the optimizers in place.
    /// </summary>
    [Theory]
    [MemberData(nameof(AdaGradPairs))]
    public void ClosedFormEqualsBlackBoxWithAdaGrad(string a, bool zooIsMagnitude, GraftGranularity g)
    {
        var w1 = Fixtures.MakeParameters(Fixtures.Shapes);
        var w2 = Fixtures.Clone(w1);
        TorchSharp.torch.optim.Optimizer M(System.Collections.Generic.List<TorchSharp.Modules.Parameter> w) =>
            zooIsMagnitude ? ZooCatalog.Make(a, w) : ChildCatalog.Make("paper-adagrad", w);
        TorchSharp.torch.optim.Optimizer D(System.Collections.Generic.List<TorchSharp.Modules.Parameter> w) =>
            zooIsMagnitude ? ChildCatalog.Make("paper-adagrad", w) : ZooCatalog.Make(a, w);
        using var closed = new GraftOptimizer(M(w1), D(w1), Options(g, GraftPath.ClosedForm));
        using var box = new GraftOptimizer(M(w2), D(w2), Options(g, GraftPath.BlackBox));
        closed.IsClosedForm.Should().BeTrue();
        box.IsClosedForm.Should().BeFalse();
        for (int step = 0; step < 20; step++) {
            Fixtures.SetGradients(w1, step);
            Fixtures.SetGradients(w2, step);
            closed.step();
            box.step();
        }
        Fixtures.MaxRelativeDifference(w1, w2).Should().BeLessThanOrEqualTo(1e-9);
        Fixtures.MaxRelativeDifference(w1, Fixtures.MakeParameters(Fixtures.Shapes)).Should().BeGreaterThan(1e-3, "the parameters must have moved");
    }

    /// <summary>The applied step of Graft(AdaGrad, A) has AdaGrad's norm and A's direction, per tensor.</summary>
    [Theory]
    [MemberData(nameof(ZooCatalog.Names), MemberType = typeof(ZooCatalog))]
    public void AppliedStepHasAdaGradNormAndZooDirection(string a)
    {
        var w = Fixtures.MakeParameters(Fixtures.Shapes);
        var wm = Fixtures.Clone(w);
        var wd = Fixtures.Clone(w);
        using var graft = new GraftOptimizer(ChildCatalog.Make("paper-adagrad", w), ZooCatalog.Make(a, w), Options(GraftGranularity.PerTensor, GraftPath.ClosedForm));
        using var refM = ChildCatalog.Make("paper-adagrad", wm);
        using var refD = ZooCatalog.Make(a, wd);
        for (int step = 0; step < 6; step++) {
            var before = w.Select(p => p.detach().clone()).ToList();
            using (TorchSharp.torch.no_grad()) {
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
            for (int i = 0; i < w.Count; i++) {
                var applied = (w[i].detach() - before[i]).reshape(-1);
                var dm = (wm[i].detach() - before[i]).reshape(-1);
                var dd = (wd[i].detach() - before[i]).reshape(-1);
                double na = applied.norm().item<double>(), nm = dm.norm().item<double>(), nd = dd.norm().item<double>();
                if (nd == 0) {
                    na.Should().Be(0);
                    continue;
                }
                na.Should().BeApproximately(nm, 1e-9 * System.Math.Max(nm, 1e-12), $"tensor {i}, step {step}: the norm is AdaGrad's");
                if (na > 0) (applied / na - dd / nd).abs().max().item<double>().Should().BeLessThanOrEqualTo(1e-9, $"tensor {i}, step {step}: the direction is {a}'s");
            }
        }
    }
}
