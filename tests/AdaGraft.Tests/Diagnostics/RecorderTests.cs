using AdaGraft.Diagnostics;
using AdaGraft.Plotting;

namespace AdaGraft.Tests.Diagnostics;

public class RecorderTests
{
    [Theory]
    [InlineData(GraftGranularity.PerTensor)]
    [InlineData(GraftGranularity.Global)]
    [InlineData(GraftGranularity.PerBlock)]
    public void RecordsEqualTheNormsOfEachStep(GraftGranularity g)
    {
        var w = Fixtures.MakeParameters(Fixtures.Shapes);
        using var graft = new GraftOptimizer(GenericSecondMomentOptimizer.HeavyBall(w, 0.02), GenericSecondMomentOptimizer.AdaGrad(w, 1),
            new GraftOptions { Granularity = g, BlockSize = 4, OwnsChildren = true });
        using var recorder = new StepNormRecorder(graft, new RecorderOptions { FlushEvery = 4 });
        var expected = new System.Collections.Generic.List<(long step, int tensor, double m, double d)>();
        for (int step = 1; step <= 10; step++) {
            Fixtures.SetGradients(w, step);
            graft.step();
            var n = graft.LastNorms!;
            for (int i = 0; i < w.Count; i++)
                expected.Add((step, i, n.Magnitude[i]!.norm().item<double>(), n.Direction[i]!.norm().item<double>()));
            expected.Add((step, -1, n.GlobalMagnitude.item<double>(), n.GlobalDirection.item<double>()));
        }
        var records = recorder.Records();
        records.Should().HaveCount(10 * (w.Count + 1));
        foreach (var (step, tensor, m, d) in expected) {
            string name = tensor < 0 ? StepNormRecorder.GlobalName : $"p{tensor}";
            var r = records.Single(x => x.Step == step && x.Tensor == name);
            r.MagnitudeNorm.Should().BeApproximately(m, 1e-12 * Math.Max(m, 1));
            r.DirectionNorm.Should().BeApproximately(d, 1e-12 * Math.Max(d, 1));
            r.Ratio.Should().BeApproximately(d == 0 ? 0 : m / d, 1e-9 * Math.Max(m / Math.Max(d, 1e-300), 1));
        }
    }

    [Fact]
    public void ValuesReachTheHostOnlyOnFlushSteps()
    {
        var w = Fixtures.MakeParameters(Fixtures.Shapes);
        using var graft = new GraftOptimizer(GenericSecondMomentOptimizer.HeavyBall(w, 0.02), GenericSecondMomentOptimizer.AdaGrad(w, 1), new GraftOptions { OwnsChildren = true });
        using var recorder = new StepNormRecorder(graft, new RecorderOptions { FlushEvery = 5 });
        for (int step = 1; step <= 23; step++) {
            Fixtures.SetGradients(w, step);
            graft.step();
            recorder.HostSteps.Should().Be(step / 5 * 5, "the device buffer is copied to the host every 5 steps");
        }
        recorder.Records().Select(r => r.Step).Distinct().Should().HaveCount(23, "reading the records flushes the rest");
    }

    [Fact]
    public void MemoryStaysBoundedByThinningEvenly()
    {
        var w = Fixtures.MakeParameters(Fixtures.Shapes);
        using var graft = new GraftOptimizer(GenericSecondMomentOptimizer.Sgd(w, 0.01), GenericSecondMomentOptimizer.Adam(w, 1), new GraftOptions { OwnsChildren = true });
        using var recorder = new StepNormRecorder(graft, new RecorderOptions { FlushEvery = 3, MaxRecordedSteps = 8 });
        Fixtures.Run(graft, w, 1, 50);
        var steps = recorder.Records().Select(r => r.Step).Distinct().OrderBy(s => s).ToArray();
        steps.Length.Should().BeInRange(4, 8);
        recorder.Stride.Should().BeOneOf(8, 16);
        steps.Should().OnlyContain(s => s % recorder.Stride == 0);
    }

    [Fact]
    public void CsvRoundTripsExactlyWithModelNames()
    {
        torch.manual_seed(3);
        using var model = nn.Sequential(("hidden", nn.Linear(3, 4)), ("out", nn.Linear(4, 1)));
        using var graft = new GraftOptimizer(GenericSecondMomentOptimizer.HeavyBall(model.parameters(), 0.05), GenericSecondMomentOptimizer.Adam(model.parameters(), 1),
            new GraftOptions { OwnsChildren = true });
        using var recorder = new StepNormRecorder(graft, model);
        recorder.TensorNames.Should().Equal("hidden.weight", "hidden.bias", "out.weight", "out.bias");
        var x = torch.randn(16, 3);
        var y = torch.randn(16, 1);
        for (int i = 0; i < 5; i++) {
            graft.zero_grad();
            nn.functional.mse_loss(model.forward(x), y).backward();
            graft.step();
        }
        var dir = Directory.CreateTempSubdirectory("adagraft-csv");
        try {
            var path = Path.Combine(dir.FullName, "norms.csv");
            recorder.WriteCsv(path);
            File.ReadLines(path).First().Should().Be("step,tensor,m_norm,d_norm,ratio");
            StepNormCsv.Read(path).Should().Equal(recorder.Records());
        } finally {
            dir.Delete(true);
        }
    }

    [Fact]
    public void PlotsAreValidPngsOfTheRequestedSize()
    {
        var w = Fixtures.MakeParameters(Fixtures.Shapes);
        using var graft = new GraftOptimizer(GenericSecondMomentOptimizer.HeavyBall(w, 0.02), GenericSecondMomentOptimizer.AdaGrad(w, 1),
            new GraftOptions { Granularity = GraftGranularity.Global, OwnsChildren = true });
        using var recorder = new StepNormRecorder(graft);
        Fixtures.Run(graft, w, 1, 40);
        var records = recorder.Records();
        var (t, r) = recorder.GlobalRatios();
        var fit = ScheduleFitter.Linear(t, r);
        var dir = Directory.CreateTempSubdirectory("adagraft-png");
        try {
            var a = Path.Combine(dir.FullName, "global.png");
            var b = Path.Combine(dir.FullName, "tensors.png");
            RatioPlots.GlobalRatio(records, a, fit, 640, 400);
            RatioPlots.PerTensorRatios(records, b, 720, 480);
            PngSize(a).Should().Be((640, 400));
            PngSize(b).Should().Be((720, 480));
        } finally {
            dir.Delete(true);
        }
    }

    /// <summary>Checks the PNG signature and the IHDR chunk, and returns (width, height).</summary>
    public static (int width, int height) PngSize(string path)
    {
        var bytes = File.ReadAllBytes(path);
        bytes.Take(8).Should().Equal(new byte[] { 0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A }, "a PNG starts with its signature");
        System.Text.Encoding.ASCII.GetString(bytes, 12, 4).Should().Be("IHDR");
        int W(int at) => (bytes[at] << 24) | (bytes[at + 1] << 16) | (bytes[at + 2] << 8) | bytes[at + 3];
        bytes.Length.Should().BeGreaterThan(1000, "a plot has content");
        return (W(16), W(20));
    }
}
