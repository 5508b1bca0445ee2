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
    public void GraftOfAWithItselfEqualsA(string a, GraftGranularity g, GraftPath path) =>
        GraftHarness.Divergence(
            w => ChildCatalog.Graft(a, a, w, Options(g, path) with { OwnsChildren = true }),
            w => ChildCatalog.Make(a, w), steps: 20).Should().BeLessThanOrEqualTo(1e-10);

    /// <summary>
    /// Against independent copies of M and D stepped from the graft's own iterate with the same gradient: the applied
    /// step has M's norm and D's direction, per segment (tensor, block) or globally.
    /// </summary>
    [Theory]
    [MemberData(nameof(Pairs))]
    public void AppliedStepHasNormOfMAndDirectionOfD(string m, string d, GraftGranularity g, GraftPath path) =>
        GraftHarness.AssertNormOfMAndDirectionOfD(
            w => ChildCatalog.Graft(m, d, w, Options(g, path) with { OwnsChildren = true }),
            w => ChildCatalog.Make(m, w), w => ChildCatalog.Make(d, w), g, blockSize: 4, steps: 8, tolerance: 1e-6);

    [Theory]
    [MemberData(nameof(Pairs))]
    public void DirectionLearningRateCancelsOut(string m, string d, GraftGranularity g, GraftPath path) =>
        GraftHarness.Divergence(
            w => ChildCatalog.Graft(m, d, w, Options(g, path) with { OwnsChildren = true }),
            w => new GraftOptimizer(ChildCatalog.Make(m, w), ChildCatalog.Make(d, w, lrScale: 123), Options(g, path) with { OwnsChildren = true }),
            steps: 10).Should().BeLessThanOrEqualTo(1e-9);

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
    public void ClosedFormEqualsBlackBox(string m, string d, GraftGranularity g) =>
        GraftHarness.Divergence(
            w => Checked(ChildCatalog.Graft(m, d, w, Options(g, GraftPath.ClosedForm) with { OwnsChildren = true }), closedForm: true),
            w => Checked(ChildCatalog.Graft(m, d, w, Options(g, GraftPath.BlackBox) with { OwnsChildren = true }), closedForm: false),
            steps: 20).Should().BeLessThanOrEqualTo(1e-9);

    private static GraftOptimizer Checked(GraftOptimizer graft, bool closedForm)
    {
        graft.IsClosedForm.Should().Be(closedForm);
        return graft;
    }

    [Theory]
    [MemberData(nameof(Pairs))]
    public void ZeroAndMissingGradientsDoNotMoveOrPoison(string m, string d, GraftGranularity g, GraftPath path)
    {
        var w = Fixtures.MakeParameters(Fixtures.Shapes);
        using var graft = ChildCatalog.Graft(m, d, w, Options(g, path) with { OwnsChildren = true });
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
