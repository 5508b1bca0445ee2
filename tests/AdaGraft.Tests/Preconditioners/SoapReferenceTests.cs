namespace AdaGraft.Tests.Preconditioners;

/// <summary>
/// SOAP against a straightforward implementation written here with plain tensor ops on one small matrix, over steps
/// that include the first eigendecomposition and two power-iteration + QR refreshes. The independent form keeps the
/// first moment in the original space and rotates it every step (the paper's form); the library keeps it in the
/// eigenbasis and carries it over when the basis changes. They agree because every basis is orthonormal.
/// </summary>
public class SoapReferenceTests
{
    private sealed record Config(double Lr, double Beta1, double Beta2, double ShampooBeta, double Eps, double WeightDecay,
        int Frequency, bool NormalizeGrads, bool CorrectBias);

    public static TheoryData<string> Cases => new() { "defaults", "eps-decay-normalize", "no-bias-correction-shampoo-beta" };

    private static Config ConfigOf(string name) => name switch {
        "defaults" => new(3e-3, 0.95, 0.95, 0.95, 1e-8, 0.01, 3, false, true),
        "eps-decay-normalize" => new(0.02, 0.9, 0.99, 0.99, 0.3, 0.5, 3, true, true),
        "no-bias-correction-shampoo-beta" => new(0.01, 0.8, 0.9, 0.6, 1e-8, 0, 2, false, false),
        _ => throw new ArgumentOutOfRangeException(nameof(name)),
    };

    private static Tensor Gradient(Tensor w, int step)
    {
        using var gen = new Generator((ulong)(977 + step));
        return torch.randn(w.shape, ScalarType.Float64, generator: gen) + 0.1 * w;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void MatchesAStraightforwardImplementationOnA3x2Matrix(string name)
    {
        var c = ConfigOf(name);
        const int steps = 8; // the first builds the bases; Adam steps 1..7 refresh at multiples of the frequency
        using var gen = new Generator(5);
        var start = torch.randn(new long[] { 3, 2 }, ScalarType.Float64, generator: gen);
        var p = new Parameter(start.clone());
        using var soap = SoapOptimizer.Create(new[] { p }, lr: c.Lr, beta1: c.Beta1, beta2: c.Beta2, shampoo_beta: c.ShampooBeta,
            eps: c.Eps, weight_decay: c.WeightDecay, precondition_frequency: c.Frequency, normalize_grads: c.NormalizeGrads,
            correct_bias: c.CorrectBias);

        var w = start.clone();
        var l = torch.zeros(3, 3, dtype: ScalarType.Float64);
        var r = torch.zeros(2, 2, dtype: ScalarType.Float64);
        var m = torch.zeros(3, 2, dtype: ScalarType.Float64); // original space
        var v = torch.zeros(3, 2, dtype: ScalarType.Float64); // eigenbasis
        Tensor ql = l, qr = r;
        int refreshes = 0;
        for (int call = 1; call <= steps; call++) {
            var g = Gradient(w, call);
            p.grad = Gradient(p.detach(), call);
            soap.step();
            l = c.ShampooBeta * l + (1 - c.ShampooBeta) * g.matmul(g.t());
            var rNew = c.ShampooBeta * r + (1 - c.ShampooBeta) * g.t().matmul(g);
            if (call == 1) {
                r = rNew;
                ql = torch.linalg.eigh(l + 1e-30 * torch.eye(3, dtype: ScalarType.Float64)).Item2.flip(1);
                qr = torch.linalg.eigh(r + 1e-30 * torch.eye(2, dtype: ScalarType.Float64)).Item2.flip(1);
                Fixtures.RelativeDifference(p.detach(), start).Should().Be(0, "the first step only builds the bases");
                continue;
            }
            int t = call - 1;
            var gp = ql.t().matmul(g).matmul(qr);
            m = c.Beta1 * m + (1 - c.Beta1) * g;
            v = c.Beta2 * v + (1 - c.Beta2) * gp * gp;
            var u = ql.matmul(ql.t().matmul(m).matmul(qr) / (v.sqrt() + c.Eps)).matmul(qr.t());
            if (c.NormalizeGrads) u = u / (u.pow(2).mean().sqrt() + 1e-30);
            double s = c.CorrectBias ? c.Lr * Math.Sqrt(1 - Math.Pow(c.Beta2, t)) / (1 - Math.Pow(c.Beta1, t)) : c.Lr;
            w = w - s * u;
            w = w - c.Lr * c.WeightDecay * w;
            r = rNew;
            if (t % c.Frequency == 0) {
                refreshes++;
                var orderL = torch.diag(ql.t().matmul(l).matmul(ql)).argsort(descending: true);
                v = v.index_select(0, orderL);
                ql = torch.linalg.qr(l.matmul(ql.index_select(1, orderL))).Item1;
                var orderR = torch.diag(qr.t().matmul(r).matmul(qr)).argsort(descending: true);
                v = v.index_select(1, orderR);
                qr = torch.linalg.qr(r.matmul(qr.index_select(1, orderR))).Item1;
            }
            Fixtures.RelativeDifference(p.detach(), w).Should().BeLessThanOrEqualTo(1e-12, $"step {call}");
        }
        refreshes.Should().BeGreaterThanOrEqualTo(2);
        var state = soap.StateOf(p);
        Fixtures.RelativeDifference(state.Factor(0)!, l).Should().BeLessThanOrEqualTo(1e-12, "L");
        Fixtures.RelativeDifference(state.Factor(1)!, r).Should().BeLessThanOrEqualTo(1e-12, "R");
        Fixtures.RelativeDifference(state.SecondMoment!, v).Should().BeLessThanOrEqualTo(1e-12, "v follows the sorted eigenvectors");
        var mInBasis = ql.t().matmul(m).matmul(qr);
        // A basis is defined up to the sign of each column; m's coordinates flip with it, v's do not.
        Fixtures.RelativeDifference(state.FirstMoment!.abs(), mInBasis.abs()).Should().BeLessThanOrEqualTo(1e-10, "m in the current eigenbasis");
        Fixtures.RelativeDifference(start, w).Should().BeGreaterThan(1e-3, "the parameters moved");
    }

    /// <summary>
    /// A vector with <c>precondition_1d</c>: one factor <c>g·gᵀ</c> and its eigenbasis, against the same
    /// straightforward form (two Adam steps, no refresh).
    /// </summary>
    [Fact]
    public void AVectorWithPrecondition1DIsRotatedByItsOwnFactor()
    {
        var start = torch.tensor(new[] { 0.5, -1.0, 2.0 }, ScalarType.Float64);
        var p = new Parameter(start.clone());
        using var soap = SoapOptimizer.Create(new[] { p }, lr: 0.1, eps: 1e-3, weight_decay: 0, precondition_1d: true, precondition_frequency: 100);
        var grads = new[] { new[] { 1.0, 2.0, -1.0 }, new[] { 0.5, -0.3, 0.2 }, new[] { -1.0, 0.4, 0.7 } };
        var w = start.clone();
        var f = torch.zeros(3, 3, dtype: ScalarType.Float64);
        var m = torch.zeros(3, dtype: ScalarType.Float64);
        var v = torch.zeros(3, dtype: ScalarType.Float64);
        Tensor q = f;
        for (int call = 1; call <= grads.Length; call++) {
            var g = torch.tensor(grads[call - 1], ScalarType.Float64);
            p.grad = g.clone();
            soap.step();
            if (call == 1) {
                // g·gᵀ has rank 1: its zero eigenvalue is double, and any orthonormal basis of that plane is an
                // eigenbasis. Take the library's choice after checking that it is one (descending eigenvalues).
                f = 0.05 * g.outer(g);
                q = soap.StateOf(p).Basis(0)!.clone();
                SoapTestSupport.OrthonormalityError(q).Should().BeLessThanOrEqualTo(1e-14);
                var lambda = q.t().matmul(f).matmul(q);
                (lambda - torch.diag(torch.diag(lambda))).abs().max().item<double>().Should().BeLessThanOrEqualTo(1e-14, "QᵀFQ is diagonal");
                lambda[0, 0].item<double>().Should().BeApproximately(0.05 * 6, 1e-14, "the largest eigenvalue (0.05·|g|²) comes first");
                continue;
            }
            int t = call - 1;
            var gp = q.t().matmul(g);
            m = 0.95 * m + 0.05 * g;
            v = 0.95 * v + 0.05 * gp * gp;
            var u = q.matmul(q.t().matmul(m) / (v.sqrt() + 1e-3));
            w = w - 0.1 * Math.Sqrt(1 - Math.Pow(0.95, t)) / (1 - Math.Pow(0.95, t)) * u;
            f = 0.95 * f + 0.05 * g.outer(g);
            Fixtures.RelativeDifference(p.detach(), w).Should().BeLessThanOrEqualTo(1e-12, $"step {call}");
        }
        Fixtures.RelativeDifference(soap.StateOf(p).Factor(0)!, f).Should().BeLessThanOrEqualTo(1e-12);
    }
}
