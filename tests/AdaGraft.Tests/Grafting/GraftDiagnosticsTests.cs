namespace AdaGraft.Tests.Grafting;

/// <summary>
/// <see cref="GraftOptimizer.LastNorms"/> reports the norms the step used: checked against norms computed here, element
/// by element in double precision, from standalone copies of M and D stepped from the same iterate with the same
/// gradient.
/// </summary>
public class GraftDiagnosticsTests
{
    private const long Block = 4;
    private const double Tolerance = 1e-9;

    public static TheoryData<string, string, GraftGranularity, GraftPath> Cases()
    {
        var data = new TheoryData<string, string, GraftGranularity, GraftPath>();
        var pairs = new[] {
            ("paper-sgd", "paper-adam", GraftPath.ClosedForm),
            ("paper-adam", "paper-adagrad", GraftPath.ClosedForm),
            ("paper-heavyball", "paper-rmsprop", GraftPath.BlackBox),
            ("torch-adam", "torch-sgd", GraftPath.BlackBox),
            ("torch-adagrad", "paper-adam", GraftPath.BlackBox),
        };
        foreach (var (m, d, path) in pairs)
            foreach (var g in new[] { GraftGranularity.PerTensor, GraftGranularity.Global, GraftGranularity.PerBlock })
                data.Add(m, d, g, path);
        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void LastNormsEqualIndependentlyComputedNorms(string m, string d, GraftGranularity g, GraftPath path)
    {
        var w = Fixtures.MakeParameters(Fixtures.Shapes);
        var wm = Fixtures.Clone(w);
        var wd = Fixtures.Clone(w);
        using var graft = ChildCatalog.Graft(m, d, w, new GraftOptions { Granularity = g, Path = path, BlockSize = Block, OwnsChildren = true });
        using var refM = ChildCatalog.Make(m, wm);
        using var refD = ChildCatalog.Make(d, wd);
        graft.LastNorms.Should().BeNull("no step has been taken");

        for (int step = 0; step < 4; step++) {
            var before = Fixtures.Snapshot(w);
            GraftHarness.StepAlongside(graft, w, refM, wm, refD, wd, step);

            var dm = Deltas(wm, before);
            var dd = Deltas(wd, before);
            var applied = Deltas(w, before);
            var norms = graft.LastNorms!;
            norms.Should().NotBeNull();
            norms.Magnitude.Should().HaveCount(w.Count);
            norms.Direction.Should().HaveCount(w.Count);
            norms.Ratio.Should().HaveCount(w.Count);

            double globalM = Norm(dm.SelectMany(x => x)), globalD = Norm(dd.SelectMany(x => x));
            globalD.Should().BeGreaterThan(0);
            ExpectClose(Scalar(norms.GlobalMagnitude), globalM, "global ‖ΔM‖");
            ExpectClose(Scalar(norms.GlobalDirection), globalD, "global ‖ΔD‖");
            ExpectClose(Scalar(norms.GlobalRatio), globalM / globalD, "global ratio");

            for (int i = 0; i < w.Count; i++) {
                long size = g == GraftGranularity.PerBlock ? Block : Math.Max(dm[i].Length, 1);
                var segM = SegmentNorms(dm[i], size);
                var segD = SegmentNorms(dd[i], size);
                var mag = Values(norms.Magnitude[i]);
                var dir = Values(norms.Direction[i]);
                var ratio = Values(norms.Ratio[i]);
                long expectedSegments = g == GraftGranularity.PerBlock ? (dm[i].Length + Block - 1) / Block : 1;
                mag.Should().HaveCount((int)expectedSegments, $"tensor {i} has {dm[i].Length} elements");
                dir.Should().HaveCount((int)expectedSegments);
                ratio.Should().HaveCount((int)expectedSegments);
                for (int s = 0; s < expectedSegments; s++) {
                    ExpectClose(mag[s], segM[s], $"‖ΔM‖ of tensor {i}, segment {s}, step {step}");
                    ExpectClose(dir[s], segD[s], $"‖ΔD‖ of tensor {i}, segment {s}, step {step}");
                    double expectedRatio = g == GraftGranularity.Global ? globalM / globalD : segD[s] == 0 ? 0 : segM[s] / segD[s];
                    ExpectClose(ratio[s], expectedRatio, $"ratio of tensor {i}, segment {s}, step {step}");
                    // The reported ratio is the one applied: the step is ratio·ΔD on the segment.
                    for (long j = s * size; j < Math.Min((s + 1) * size, dd[i].Length); j++)
                        applied[i][j].Should().BeApproximately(ratio[s] * dd[i][j], Tolerance * Math.Max(Math.Abs(ratio[s] * dd[i][j]), 1e-3));
                }
            }
        }
    }

    [Theory]
    [InlineData(GraftPath.ClosedForm)]
    [InlineData(GraftPath.BlackBox)]
    public void RatioWithEpsilonIsMagnitudeOverDirectionPlusEpsilon(GraftPath path)
    {
        const double eps = 0.25;
        var w = Fixtures.MakeParameters(Fixtures.Shapes);
        var wm = Fixtures.Clone(w);
        var wd = Fixtures.Clone(w);
        using var graft = ChildCatalog.Graft("paper-adam", "paper-sgd", w, new GraftOptions { Path = path, Epsilon = eps, OwnsChildren = true });
        using var refM = ChildCatalog.Make("paper-adam", wm);
        using var refD = ChildCatalog.Make("paper-sgd", wd);
        var before = Fixtures.Snapshot(w);
        GraftHarness.StepAlongside(graft, w, refM, wm, refD, wd, 0);

        var dm = Deltas(wm, before);
        var dd = Deltas(wd, before);
        var applied = Deltas(w, before);
        for (int i = 0; i < w.Count; i++) {
            double expected = Norm(dm[i]) / (Norm(dd[i]) + eps);
            ExpectClose(Values(graft.LastNorms!.Ratio[i])[0], expected, $"ratio of tensor {i}");
            for (int j = 0; j < dd[i].Length; j++)
                applied[i][j].Should().BeApproximately(expected * dd[i][j], Tolerance * Math.Max(Math.Abs(expected * dd[i][j]), 1e-3));
        }
    }

    [Theory]
    [InlineData(GraftGranularity.PerTensor, GraftPath.ClosedForm)]
    [InlineData(GraftGranularity.PerBlock, GraftPath.ClosedForm)]
    [InlineData(GraftGranularity.Global, GraftPath.BlackBox)]
    public void ATensorWithoutGradientHasNoNormsAndTheGlobalNormsLeaveItOut(GraftGranularity g, GraftPath path)
    {
        var w = Fixtures.MakeParameters(Fixtures.Shapes);
        var wm = Fixtures.Clone(w);
        var wd = Fixtures.Clone(w);
        using var graft = ChildCatalog.Graft("paper-sgd", "paper-adam", w, new GraftOptions { Granularity = g, Path = path, BlockSize = Block, OwnsChildren = true });
        using var refM = ChildCatalog.Make("paper-sgd", wm);
        using var refD = ChildCatalog.Make("paper-adam", wd);
        var before = Fixtures.Snapshot(w);
        Fixtures.SetGradients(w, 0);
        Fixtures.SetGradients(wm, 0);
        Fixtures.SetGradients(wd, 0);
        foreach (var ps in new[] { w, wm, wd }) ps[1].grad = null;
        graft.step();
        refM.step();
        refD.step();

        var norms = graft.LastNorms!;
        norms.Magnitude[1].Should().BeNull();
        norms.Direction[1].Should().BeNull();
        norms.Ratio[1].Should().BeNull();
        foreach (var i in new[] { 0, 2, 3 }) {
            norms.Magnitude[i].Should().NotBeNull();
            norms.Direction[i].Should().NotBeNull();
            norms.Ratio[i].Should().NotBeNull();
        }
        var dm = Deltas(wm, before);
        var dd = Deltas(wd, before);
        dm[1].Should().OnlyContain(x => x == 0);
        ExpectClose(Scalar(norms.GlobalMagnitude), Norm(dm.SelectMany(x => x)), "global ‖ΔM‖");
        ExpectClose(Scalar(norms.GlobalDirection), Norm(dd.SelectMany(x => x)), "global ‖ΔD‖");
        Fixtures.Snapshot(w)[1].Should().Equal(before[1], "a tensor without a gradient does not move");
    }

    private static double[][] Deltas(IList<Parameter> ps, double[][] before)
    {
        var now = Fixtures.Snapshot(ps);
        return now.Select((x, i) => x.Select((v, j) => v - before[i][j]).ToArray()).ToArray();
    }

    private static double[] SegmentNorms(double[] v, long size)
    {
        var result = new List<double>();
        for (long at = 0; at < v.Length; at += size)
            result.Add(Norm(v.Skip((int)at).Take((int)Math.Min(size, v.Length - at))));
        return result.ToArray();
    }

    private static double Norm(IEnumerable<double> v) => Math.Sqrt(v.Sum(x => x * x));

    private static double[] Values(Tensor? t)
    {
        t.Should().NotBeNull();
        t!.dim().Should().Be(1, "per-tensor norms are 1-d, one entry per segment");
        return TestTensors.Values(t);
    }

    private static double Scalar(Tensor t)
    {
        t.numel().Should().Be(1);
        return TestTensors.Values(t)[0];
    }

    private static void ExpectClose(double actual, double expected, string what) =>
        actual.Should().BeApproximately(expected, Tolerance * Math.Max(Math.Abs(expected), 1e-12), what);
}
