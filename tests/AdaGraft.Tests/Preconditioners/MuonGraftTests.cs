using AdaGraft.Rules;

namespace AdaGraft.Tests.Preconditioners;

/// <summary>
/// Muon as a child of <see cref="GraftOptimizer"/>: Adam#Muon per tensor takes Adam's per-tensor step norm and Muon's
/// direction (the exact counterpart of Moonlight's fixed size rule); Muon as M; closed form = black box.
/// </summary>
public class MuonGraftTests
{
    private static MuonOptimizer MuonD(IEnumerable<Parameter> w) =>
        MuonOptimizer.CreateWithAdamW(w, lr: 1, weight_decay: 0, adjust_lr_fn: MuonSizeRule.None, ns_precision: NewtonSchulzPrecision.ParameterDtype);

    /// <summary>torch.optim.Adam over the Muon optimizer's groups (a graft pairs its children's groups and parameters by position).</summary>
    private static GenericSecondMomentOptimizer AdamOver(MuonOptimizer muon, double lr) =>
        GenericSecondMomentOptimizer.TorchAdam(muon.Groups.Select(g => new GenericSecondMomentOptimizer.ParamGroup(g.Parameters)).ToList(), lr: lr);

    /// <summary>
    /// <see cref="MuonGraft.FromAdam"/> over a vector, a matrix, a 3-d tensor and a scalar: every step has Adam's norm
    /// and Muon's (orthogonalised) direction per tensor; the vector and scalar go to Muon's AdamW, so take Adam's step.
    /// </summary>
    [Fact]
    public void AdamGraftMuonHasAdamsNormAndMuonsDirection() =>
        GraftHarness.AssertNormOfMAndDirectionOfD(
            w => MuonGraft.FromAdam(w, lr: 0.01, ns_precision: NewtonSchulzPrecision.ParameterDtype),
            w => GenericSecondMomentOptimizer.TorchAdam(w, lr: 0.01),
            MuonD, GraftGranularity.PerTensor, blockSize: 0, steps: 6, tolerance: 1e-9);

    /// <summary>Muon as M: the step has Muon's norm (its size rule) and Adam's direction.</summary>
    [Fact]
    public void MuonGraftAdamHasMuonsNormAndAdamsDirection() =>
        GraftHarness.AssertNormOfMAndDirectionOfD(
            w => {
                var muon = MuonTestSupport.Mixed(w, rule: MuonSizeRule.MatchAdamWRms);
                return new GraftOptimizer(muon, AdamOver(muon, 1), new GraftOptions { OwnsChildren = true });
            },
            w => MuonTestSupport.Mixed(w, rule: MuonSizeRule.MatchAdamWRms),
            w => GenericSecondMomentOptimizer.TorchAdam(w, lr: 1), GraftGranularity.PerTensor, blockSize: 0, steps: 6, tolerance: 1e-9);

    /// <summary>The closed form (proposals) equals the black box (save, step, restore) for Adam#Muon, per tensor and globally.</summary>
    [Theory]
    [InlineData(GraftGranularity.PerTensor)]
    [InlineData(GraftGranularity.Global)]
    public void ClosedFormEqualsBlackBox(GraftGranularity granularity)
    {
        GraftOptimizer Make(List<Parameter> w, GraftPath path)
        {
            var muon = MuonD(w);
            return new(AdamOver(muon, 0.01), muon, new GraftOptions { Granularity = granularity, Path = path, OwnsChildren = true });
        }
        GraftHarness.Divergence(w => {
            var g = Make(w, GraftPath.ClosedForm);
            g.IsClosedForm.Should().BeTrue();
            return g;
        }, w => Make(w, GraftPath.BlackBox), steps: 20).Should().BeLessThanOrEqualTo(1e-9);
    }

    /// <summary>Graft(Muon, 3·Muon) = Muon: D's learning rate cancels, and Muon proposes exactly the step it applies.</summary>
    [Fact]
    public void GraftOfMuonWithScaledMuonEqualsMuon() =>
        GraftHarness.Divergence(
            w => new GraftOptimizer(MuonTestSupport.Mixed(w), MuonTestSupport.Mixed(w, lrScale: 3), new GraftOptions { OwnsChildren = true }),
            w => MuonTestSupport.Mixed(w), steps: 20).Should().BeLessThanOrEqualTo(1e-10);

    /// <summary>
    /// Per tensor, the size rule of D cancels: Adam#Muon is the same whichever rule D was built with. Only the graft
    /// fixes the step's length; the rule matters only when Muon runs on its own (or in a global graft).
    /// </summary>
    [Fact]
    public void PerTensorGraftIgnoresTheDirectionsSizeRule() =>
        GraftHarness.Divergence(
            w => MuonGraft.FromAdam(w, lr: 0.01, ns_precision: NewtonSchulzPrecision.ParameterDtype),
            w => {
                var muon = MuonOptimizer.CreateWithAdamW(w, lr: 1, weight_decay: 0, adjust_lr_fn: MuonSizeRule.MatchAdamWRms, ns_precision: NewtonSchulzPrecision.ParameterDtype);
                return new GraftOptimizer(AdamOver(muon, 0.01), muon, new GraftOptions { OwnsChildren = true });
            },
            steps: 10).Should().BeLessThanOrEqualTo(1e-12);
}
