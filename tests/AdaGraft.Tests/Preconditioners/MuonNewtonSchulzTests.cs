using AdaGraft.Rules;

namespace AdaGraft.Tests.Preconditioners;

/// <summary>
/// The quintic Newton–Schulz iteration: on random matrices its output's singular values lie in [0.6, 1.2] and it keeps
/// the input's singular vectors (so its row and column spaces), for square, tall, wide and reshaped convolution shapes.
/// </summary>
public class MuonNewtonSchulzTests
{
    public static TheoryData<int> ShapeIndices() => new() { 0, 1, 2, 3 };

    private static Tensor Matrix(int shapeIndex, int seed)
    {
        var shape = MuonTestSupport.MatrixShapes[shapeIndex];
        var (rows, cols) = MuonRule.MatrixShape(shape);
        return MuonTestSupport.Gaussian(shape, seed).reshape(rows, cols);
    }

    /// <summary>
    /// Below this fraction of ‖G‖_F a singular value cannot reach 0.6 in five steps: the quintic's slope at 0 is
    /// a = 3.4445, so five steps multiply a tiny singular value by at most a⁵ ≈ 490 (the scalar map reaches 0.6 at
    /// about 1.3e-3). A property of the reference iteration, not of this implementation.
    /// </summary>
    private const double Reachable = 1.5e-3;

    /// <summary>
    /// svdvals(O) ⊂ [0.6, 1.2] on tall, wide and reshaped-kernel Gaussian matrices (all their singular values are well
    /// above <see cref="Reachable"/>); on square ones, whose smallest singular value is near 0, the same holds for every
    /// singular direction of G above it (paired through G's own singular vectors), and the rest stay below 0.6.
    /// </summary>
    [Theory]
    [MemberData(nameof(ShapeIndices))]
    public void SingularValuesLieBetween06And12(int shapeIndex)
    {
        using var scope = torch.NewDisposeScope();
        bool square = shapeIndex == 0;
        for (int seed = 1; seed <= 5; seed++) {
            var g = Matrix(shapeIndex, seed);
            var o = MuonRule.NewtonSchulz(g);
            o.dtype.Should().Be(ScalarType.Float32, "the default precision is float32");
            o.shape.Should().Equal(g.shape);
            var o64 = o.to_type(ScalarType.Float64);
            var (u, s, vh) = torch.linalg.svd(g, fullMatrices: false);
            var relative = TestTensors.Values(s / g.norm());
            var mapped = TestTensors.Values(u.t().mm(o64).mm(vh.t()).diagonal());
            for (int i = 0; i < relative.Length; i++) {
                if (relative[i] >= Reachable) mapped[i].Should().BeInRange(0.6, 1.2, $"seed {seed}: σ{i} = {relative[i]:G3}·‖G‖");
                else mapped[i].Should().BeInRange(0, 0.6, $"seed {seed}: σ{i} = {relative[i]:G3}·‖G‖ is below reach");
            }
            if (!square) {
                relative.Min().Should().BeGreaterThan(Reachable);
                var sv = torch.linalg.svdvals(o64);
                sv.min().item<double>().Should().BeGreaterThanOrEqualTo(0.6, $"seed {seed}: the smallest singular value");
                sv.max().item<double>().Should().BeLessThanOrEqualTo(1.2, $"seed {seed}: the largest singular value");
            }
            // The input's singular values spread over a wide range: the iteration really compressed them.
            (relative.Max() / relative.Min()).Should().BeGreaterThan(2);
        }
    }

    /// <summary>O = U·f(Σ)·Vᵀ with G's own U and V: Uᵀ·O·V is diagonal, and O lies in G's column and row spaces.</summary>
    [Theory]
    [MemberData(nameof(ShapeIndices))]
    public void KeepsTheInputsSingularVectors(int shapeIndex)
    {
        using var scope = torch.NewDisposeScope();
        var g = Matrix(shapeIndex, 11);
        var o = MuonRule.NewtonSchulz(g).to_type(ScalarType.Float64);
        var (u, _, vh) = torch.linalg.svd(g, fullMatrices: false);
        var core = u.t().mm(o).mm(vh.t());
        var offDiagonal = core - torch.diag_embed(core.diagonal());
        (offDiagonal.norm() / o.norm()).item<double>().Should().BeLessThan(1e-4, "Uᵀ·O·V is diagonal");
        (o - u.mm(u.t()).mm(o)).norm().item<double>().Should().BeLessThan(1e-4 * o.norm().item<double>(), "O's columns lie in G's column space");
        (o - o.mm(vh.t()).mm(vh)).norm().item<double>().Should().BeLessThan(1e-4 * o.norm().item<double>(), "O's rows lie in G's row space");
    }

    /// <summary>
    /// A rank-3 matrix (12 × 10): the output keeps exactly its column and row spaces — three singular values in
    /// [0.6, 1.2], the others 0 — which a full-rank input cannot show on the side where its space is everything.
    /// </summary>
    [Fact]
    public void LowRankInputKeepsItsRowAndColumnSpaces()
    {
        using var scope = torch.NewDisposeScope();
        var g = MuonTestSupport.Gaussian(new long[] { 12, 3 }, 21).mm(MuonTestSupport.Gaussian(new long[] { 3, 10 }, 22));
        foreach (var dtype in new[] { ScalarType.Float32, ScalarType.Float64 }) {
            var o = MuonRule.NewtonSchulz(g, dtype: dtype).to_type(ScalarType.Float64);
            var (u, _, vh) = torch.linalg.svd(g, fullMatrices: false);
            var uc = u.narrow(1, 0, 3);
            var vr = vh.narrow(0, 0, 3);
            double tol = dtype == ScalarType.Float32 ? 1e-4 : 1e-12;
            (o - uc.mm(uc.t()).mm(o)).norm().item<double>().Should().BeLessThan(tol, $"{dtype}: column space");
            (o - o.mm(vr.t()).mm(vr)).norm().item<double>().Should().BeLessThan(tol, $"{dtype}: row space");
            var sv = torch.linalg.svdvals(o);
            sv.narrow(0, 0, 3).min().item<double>().Should().BeGreaterThanOrEqualTo(0.6);
            sv.narrow(0, 0, 3).max().item<double>().Should().BeLessThanOrEqualTo(1.2);
            sv.narrow(0, 3, 7).max().item<double>().Should().BeLessThan(tol, $"{dtype}: the null space stays null");
        }
    }

    [Fact]
    public void ZeroMatrixGivesZeroAndTheInputIsNotModified()
    {
        using var scope = torch.NewDisposeScope();
        torch.count_nonzero(MuonRule.NewtonSchulz(torch.zeros(4, 6, ScalarType.Float64))).item<long>().Should().Be(0);
        var g = MuonTestSupport.Gaussian(new long[] { 6, 4 }, 3);
        var copy = g.clone();
        using var o = MuonRule.NewtonSchulz(g, dtype: ScalarType.Float64);
        (g - copy).abs().max().item<double>().Should().Be(0, "the input is not modified");
    }

    [Fact]
    public void NonMatrixInputThrowsNamingMatrix()
    {
        using var v = torch.ones(5);
        var act = () => MuonRule.NewtonSchulz(v);
        act.Should().Throw<ArgumentException>().Which.ParamName.Should().Be("matrix");
    }
}
