namespace AdaGraft.Tests.Preconditioners;

/// <summary>The eigenbases stay orthonormal and diagonalise their factors; which dimensions get one (layout).</summary>
public class SoapBasisTests
{
    /// <summary>
    /// Over 25 steps with a refresh every 4 (six QR refreshes), every basis of a matrix and of a 3-d tensor is
    /// orthonormal to 1e-12 after every step, and after the first step each diagonalises its factor (eigh).
    /// </summary>
    [Fact]
    public void BasesStayOrthonormalOverSteps()
    {
        var ps = Fixtures.MakeParameters(new[] { new long[] { 5, 3 }, new long[] { 2, 3, 4 } });
        using var soap = SoapOptimizer.Create(ps, lr: 0.01, precondition_frequency: 4);
        for (int step = 0; step < 25; step++) {
            SoapTestSupport.SetGradients(ps, step);
            soap.step();
            foreach (var p in ps) {
                var state = soap.StateOf(p);
                for (int d = 0; d < p.shape.Length; d++) {
                    var q = state.Basis(d)!;
                    SoapTestSupport.OrthonormalityError(q).Should().BeLessThanOrEqualTo(1e-12, $"step {step}, basis {d} of [{string.Join(", ", p.shape)}]");
                    if (step != 0) continue;
                    using var lambda = q.t().matmul(state.Factor(d)!).matmul(q);
                    var diagonal = torch.diag(lambda);
                    (lambda - torch.diag(diagonal)).abs().max().item<double>().Should().BeLessThanOrEqualTo(1e-12, "the first basis diagonalises its factor");
                    var values = TestTensors.Values(diagonal);
                    values.Should().BeInDescendingOrder("eigenvectors come by decreasing eigenvalue, as the reference flips eigh's");
                }
            }
        }
    }

    [Theory]
    [InlineData(new long[] { 2, 3, 4 }, 6, new long[] { 6, 4 })]
    [InlineData(new long[] { 2, 3, 4 }, 100, new long[] { 24 })]
    [InlineData(new long[] { 5, 7 }, 4, new long[] { 5, 7 })]
    [InlineData(new long[] { 3, 5, 2 }, 4, new long[] { 3, 5, 2 })]
    [InlineData(new long[] { 1, 1 }, 10, new long[] { 1 })]
    [InlineData(new long[] { 4, 1, 3 }, 4, new long[] { 4, 3 })]
    public void MergeDimsMergesNeighboursWithinTheLimit(long[] shape, long max, long[] expected) =>
        Rules.SoapLayout.Merge(shape, max).Should().Equal(expected);

    /// <summary>Which dimensions get a factor: the limit, merge_dims, precondition_1d, identity_basis; the slots follow.</summary>
    [Fact]
    public void FactorsExistExactlyForTheDimensionsWithinTheLimit()
    {
        var ps = Fixtures.MakeParameters(new[] { new long[] { 3, 5 }, new long[] { 2, 3, 4 }, new long[] { 7 }, Array.Empty<long>() });
        using var limited = SoapOptimizer.Create(ps, max_precond_dim: 3);
        SoapTestSupport.Run(limited, ps, 2);
        var matrix = limited.StateOf(ps[0]);
        matrix.Factor(0)!.shape.Should().Equal(3, 3);
        matrix.Basis(0)!.shape.Should().Equal(3, 3);
        matrix.Factor(1).Should().BeNull("5 > max_precond_dim: that side keeps the identity");
        matrix.Basis(1).Should().BeNull();
        limited.StateOf(ps[1]).Layout.Preconditioned.Should().Equal(true, true, false);
        limited.StateOf(ps[2]).Factor(0).Should().BeNull("vectors are plain Adam without precondition_1d");
        limited.StateOf(ps[3]).Layout.Shape.Should().BeEmpty();

        var qs = Fixtures.MakeParameters(new[] { new long[] { 2, 3, 4 }, new long[] { 7 } });
        using var merged = SoapOptimizer.Create(qs, max_precond_dim: 6, merge_dims: true, precondition_1d: true);
        SoapTestSupport.Run(merged, qs, 2);
        var cube = merged.StateOf(qs[0]);
        cube.Layout.Shape.Should().Equal(6, 4);
        cube.Factor(0)!.shape.Should().Equal(6, 6);
        cube.Factor(1)!.shape.Should().Equal(4, 4);
        cube.Factor(2).Should().BeNull();
        merged.StateOf(qs[1]).Layout.Preconditioned.Should().Equal(new[] { false }, "7 > max_precond_dim even with precondition_1d");

        var rs = Fixtures.MakeParameters(new[] { new long[] { 7 } });
        using var vector = SoapOptimizer.Create(rs, precondition_1d: true);
        SoapTestSupport.Run(vector, rs, 2);
        vector.StateOf(rs[0]).Factor(0)!.shape.Should().Equal(7, 7);
    }

    /// <summary>A float32 parameter keeps float32 factors and bases (the decomposition runs in float32), and they stay orthonormal.</summary>
    [Fact]
    public void Float32ParametersKeepFloat32Bases()
    {
        var ps = Fixtures.MakeParameters(new[] { new long[] { 6, 4 } }, ScalarType.Float32);
        using var soap = SoapOptimizer.Create(ps, precondition_frequency: 2);
        SoapTestSupport.Run(soap, ps, 9);
        var state = soap.StateOf(ps[0]);
        state.Basis(0)!.dtype.Should().Be(ScalarType.Float32);
        state.Factor(1)!.dtype.Should().Be(ScalarType.Float32);
        SoapTestSupport.OrthonormalityError(state.Basis(0)!).Should().BeLessThanOrEqualTo(1e-5);
        TestTensors.AllFinite(ps[0]).Should().BeTrue();
    }
}
