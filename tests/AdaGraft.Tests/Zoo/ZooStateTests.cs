namespace AdaGraft.Tests.Zoo;

/// <summary>Saved state continues bit-identically; Adafactor's state is sublinear.</summary>
public class ZooStateTests
{
    /// <summary>
    /// save_state_dict(BinaryWriter) after 7 steps, load into a fresh optimizer over a copy of the parameters, then 5
    /// more steps on both: exactly equal. The restored optimizer is built with 7× the learning rate, so its options
    /// must come from the file too; a fresh optimizer that did not load must differ (the state matters).
    /// </summary>
    [Theory]
    [MemberData(nameof(OptimizerTable.Names), MemberType = typeof(OptimizerTable))]
    public void StateDictRoundTripContinuesBitIdentically(string name)
    {
        using var original = Fixtures.Trained(p => OptimizerTable.Make(name, p), 7, out var w);
        var bytes = OptimizerTable.SaveState(original);

        var restoredParams = Fixtures.Clone(w);
        var coldParams = Fixtures.Clone(w);
        using var restored = OptimizerTable.Make(name, restoredParams, lrScale: 7);
        using var cold = OptimizerTable.Make(name, coldParams);
        OptimizerTable.LoadState(restored, bytes);
        OptimizerTable.SaveState(restored).Should().Equal(bytes, "the loaded optimizer saves exactly what it loaded (options included)");

        for (int step = 7; step < 12; step++) Fixtures.StepAll(step, (w, original), (restoredParams, restored), (coldParams, cold));
        TestTensors.ShouldBeBitIdentical(Fixtures.Snapshot(restoredParams), Fixtures.Snapshot(w), "after loading");
        if (OptimizerTable.Get(name).Stateless) {
            // LARS without momentum (and plain SGD) keeps no tensor state: only the options (the 7× learning rate above) were restored.
            TestTensors.ShouldBeBitIdentical(Fixtures.Snapshot(coldParams), Fixtures.Snapshot(w), $"{name} is stateless");
        } else {
            Fixtures.MaxRelativeDifference(coldParams, w).Should().BeGreaterThan(1e-12, "an optimizer without the saved state takes other steps");
        }
    }

    [Theory]
    [InlineData(0.0, 300 + 200)]
    [InlineData(0.9, 300 + 200 + 300 * 200)]
    public void AdafactorStateOfAMatrixIsRowsPlusColumns(double beta1, long expected)
    {
        var p = new Parameter(torch.randn(300, 200, ScalarType.Float32));
        using var opt = AdafactorOptimizer.Create(new[] { p }, lr: 0.01, beta1: beta1);
        for (int step = 0; step < 2; step++) {
            p.grad = torch.randn(300, 200, ScalarType.Float32);
            opt.step();
        }
        var state = opt.StateOf(p);
        OptimizerTable.SlotElements(new[] { state }).Should().Be(expected);
        state.RowAccumulator!.shape.Should().Equal(300);
        state.ColumnAccumulator!.shape.Should().Equal(200);
        state.SecondMoment.Should().BeNull("a matrix keeps no full accumulator");
    }

    [Fact]
    public void AdafactorFactorsTheLastTwoDimensionsAndKeepsFullVectors()
    {
        var t3 = new Parameter(torch.randn(4, 30, 20, ScalarType.Float32));
        var vec = new Parameter(torch.randn(50, ScalarType.Float32));
        using var opt = AdafactorOptimizer.Create(new[] { t3, vec }, lr: 0.01);
        t3.grad = torch.randn(4, 30, 20, ScalarType.Float32);
        vec.grad = torch.randn(50, ScalarType.Float32);
        opt.step();
        var s3 = opt.StateOf(t3);
        s3.RowAccumulator!.shape.Should().Equal(4, 30);
        s3.ColumnAccumulator!.shape.Should().Equal(4, 20);
        OptimizerTable.SlotElements(new[] { s3 }).Should().Be(4 * (30 + 20));
        var sv = opt.StateOf(vec);
        sv.SecondMoment!.shape.Should().Equal(50);
        OptimizerTable.SlotElements(new[] { sv }).Should().Be(50);
    }

    [Fact]
    public void NovoGradSecondMomentIsOneScalarPerTensor()
    {
        using var opt = Fixtures.Trained(p => NovoGradOptimizer.Create(p), 1, out var ps);
        foreach (var p in ps) {
            var s = opt.StateOf(p);
            s.SecondMoment!.shape.Should().BeEmpty();
            double g2 = p.grad!.norm().item<double>();
            s.SecondMoment.item<double>().Should().BeApproximately(g2 * g2, 1e-12 * System.Math.Max(1, g2 * g2), "v = ‖g‖² at the first step");
        }
    }
}
