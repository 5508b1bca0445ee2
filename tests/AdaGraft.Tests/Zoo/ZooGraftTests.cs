namespace AdaGraft.Tests.Zoo;

/// <summary>Every zoo rule inside grafting, on both paths.</summary>
public class ZooGraftTests
{
    private static GraftOptions Options(GraftGranularity g, GraftPath path) =>
        new() { Granularity = g, Path = path, BlockSize = 4, OwnsChildren = true };

    public static TheoryData<string, GraftPath> SelfGraftCases()
    {
        var data = new TheoryData<string, GraftPath>();
        foreach (var name in OptimizerTable.All.Where(e => e.ExactGraftIdentities).Select(e => e.Name)) {
            data.Add(name, GraftPath.ClosedForm);
            data.Add(name, GraftPath.BlackBox);
        }
        return data;
    }

    /// <summary>Graft(A, A′) = A, where A′ is A with three times the learning rate (D's learning rate cancels).</summary>
    [Theory]
    [MemberData(nameof(SelfGraftCases))]
    public void GraftOfAWithScaledAEqualsA(string a, GraftPath path) =>
        GraftHarness.Divergence(
            w => {
                var graft = new GraftOptimizer(OptimizerTable.Make(a, w), OptimizerTable.Make(a, w, lrScale: 3), Options(GraftGranularity.PerTensor, path));
                graft.IsClosedForm.Should().Be(path == GraftPath.ClosedForm);
                return graft;
            },
            w => OptimizerTable.Make(a, w), steps: 20).Should().BeLessThanOrEqualTo(1e-10);

    public static TheoryData<string, bool, GraftGranularity> AdaGradPairs()
    {
        var data = new TheoryData<string, bool, GraftGranularity>();
        foreach (var name in OptimizerTable.All.Where(e => e.ExactGraftIdentities && e.KeepsParameterOrder).Select(e => e.Name)) {
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
        TorchSharp.torch.optim.Optimizer M(System.Collections.Generic.List<TorchSharp.Modules.Parameter> w) =>
            zooIsMagnitude ? OptimizerTable.Make(a, w) : ChildCatalog.Make("paper-adagrad", w);
        TorchSharp.torch.optim.Optimizer D(System.Collections.Generic.List<TorchSharp.Modules.Parameter> w) =>
            zooIsMagnitude ? ChildCatalog.Make("paper-adagrad", w) : OptimizerTable.Make(a, w);
        GraftHarness.Divergence(
            w => new GraftOptimizer(M(w), D(w), Options(g, GraftPath.ClosedForm)),
            w => new GraftOptimizer(M(w), D(w), Options(g, GraftPath.BlackBox)),
            steps: 20).Should().BeLessThanOrEqualTo(1e-9);
    }

    /// <summary>The applied step of Graft(AdaGrad, A) has AdaGrad's norm and A's direction, per tensor.</summary>
    [Theory]
    [MemberData(nameof(OptimizerTable.OrderKeepingNames), MemberType = typeof(OptimizerTable))]
    public void AppliedStepHasAdaGradNormAndZooDirection(string a) =>
        GraftHarness.AssertNormOfMAndDirectionOfD(
            w => new GraftOptimizer(ChildCatalog.Make("paper-adagrad", w), OptimizerTable.Make(a, w), Options(GraftGranularity.PerTensor, GraftPath.ClosedForm)),
            w => ChildCatalog.Make("paper-adagrad", w), w => OptimizerTable.Make(a, w), GraftGranularity.PerTensor, blockSize: 0, steps: 6, tolerance: 1e-9);
}
