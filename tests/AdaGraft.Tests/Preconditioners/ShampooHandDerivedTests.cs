using AdaGraft.Rules;

namespace AdaGraft.Tests.Preconditioners;

/// <summary>
/// One Shampoo step on a 2×2 gradient with both eigendecompositions done by hand, and internal AdaGrad grafting
/// against the closed-form graft of AdaGrad (M) and ungrafted Shampoo (D).
/// </summary>
public sealed class ShampooHandDerivedTests
{
    // G = [[3, 0], [4, 5]]:
    //   L = G·Gᵀ = [[9, 12], [12, 41]]: trace 50, det 369 − 144 = 225 → λ = 25 ± √(625 − 225) = 25 ± 20 = 45, 5;
    //     (L − 45I)u = 0 → u₁ = (1, 3)/√10;  (L − 5I)u = 0 → u₂ = (3, −1)/√10.
    //   R = Gᵀ·G = [[25, 20], [20, 25]]: λ = 25 ± 20 = 45, 5; v₁ = (1, 1)/√2, v₂ = (1, −1)/√2.
    //   G = √45·u₁v₁ᵀ + √5·u₂v₂ᵀ (its SVD), so with ε → 0: L^(−1/4)·G·R^(−1/4) = u₁v₁ᵀ + u₂v₂ᵀ = [[2, −1], [1, 2]]/√5.
    private static readonly double[] G = { 3, 0, 4, 5 };
    private static readonly double[] W0 = { 1, 2, -3, 0.5 };

    /// <summary>Σ f(λᵢ)·xᵢxᵢᵀ for the hand eigenpairs (λ₁, x₁), (λ₂, x₂).</summary>
    private static Tensor Spectral(double l1, double[] x1, double l2, double[] x2, Func<double, double> f)
    {
        using var a = torch.tensor(x1, ScalarType.Float64).reshape(2, 1);
        using var b = torch.tensor(x2, ScalarType.Float64).reshape(2, 1);
        return a.matmul(a.t()).mul(f(l1)).add(b.matmul(b.t()).mul(f(l2)));
    }

    private static readonly double S10 = Math.Sqrt(10), S2 = Math.Sqrt(2);
    private static readonly double[] U1 = { 1 / S10, 3 / S10 }, U2 = { 3 / S10, -1 / S10 };
    private static readonly double[] V1 = { 1 / S2, 1 / S2 }, V2 = { 1 / S2, -1 / S2 };

    private static Parameter OneStep(Func<Parameter[], ShampooOptimizer> make, out ShampooOptimizer opt)
    {
        var w = new Parameter(torch.tensor(W0, ScalarType.Float64).reshape(2, 2));
        opt = make(new[] { w });
        TestTensors.SetGrad(w, G);
        opt.step();
        return w;
    }

    [Fact]
    public void OneStepWithAdaGradGraftingMatchesTheHandDerivation()
    {
        const double lr = 0.1, eps = 1e-12;
        var w = OneStep(ps => ShampooOptimizer.Create(ps, lr: lr), out var opt);
        using var _ = opt;
        using var g = torch.tensor(G, ScalarType.Float64).reshape(2, 2);
        using var lRoot = Spectral(45, U1, 5, U2, l => Math.Pow(l + eps, -0.25));
        using var rRoot = Spectral(45, V1, 5, V2, l => Math.Pow(l + eps, -0.25));
        using var p = lRoot.matmul(g).matmul(rRoot);
        using var polar = torch.tensor(new double[] { 2, -1, 1, 2 }, ScalarType.Float64).reshape(2, 2).div(Math.Sqrt(5));
        Fixtures.RelativeDifference(p, polar).Should().BeLessThan(1e-10, "the hand roots give G's polar factor");
        // AdaGrad grafting: V = G², A = G/(|G| + 1e-10) = [[1, 0], [1, 1]] up to 1e-10; ‖P‖ = √2.
        double normA = Math.Sqrt(Math.Pow(3 / (3 + 1e-10), 2) + Math.Pow(4 / (4 + 1e-10), 2) + Math.Pow(5 / (5 + 1e-10), 2));
        using var expected = torch.tensor(W0, ScalarType.Float64).reshape(2, 2).sub(p.mul(lr * normA / p.norm().item<double>()));
        Fixtures.RelativeDifference(w, expected).Should().BeLessThan(1e-12);

        var state = opt.StateOf(w);
        using var l = state.Factor(0, 0)!;
        using var r = state.Factor(0, 1)!;
        TestTensors.Values(l).Should().Equal(9, 12, 12, 41);
        TestTensors.Values(r).Should().Equal(25, 20, 20, 25);
        using var lTilde = state.Root(0, 0)!;
        Fixtures.RelativeDifference(lTilde, lRoot).Should().BeLessThan(1e-12);
    }

    [Fact]
    public void OneStepWithoutGraftingAndExponentOverrideTwoMatchesTheHandDerivation()
    {
        // p = 2: L^(−1/2)·G·R^(−1/2) = u₁v₁ᵀ/√45 + u₂v₂ᵀ/√5, the transposed pseudoinverse of G.
        const double lr = 0.5, eps = 1e-12;
        var w = OneStep(ps => ShampooOptimizer.Create(ps, lr: lr, exponent_override: 2, grafting: ShampooGrafting.None), out var opt);
        using var _ = opt;
        using var g = torch.tensor(G, ScalarType.Float64).reshape(2, 2);
        using var p = Spectral(45, U1, 5, U2, l => Math.Pow(l + eps, -0.5)).matmul(g).matmul(Spectral(45, V1, 5, V2, l => Math.Pow(l + eps, -0.5)));
        using var pinvT = torch.linalg.inv(g).t();
        Fixtures.RelativeDifference(p, pinvT).Should().BeLessThan(1e-10);
        using var expected = torch.tensor(W0, ScalarType.Float64).reshape(2, 2).sub(p.mul(lr));
        Fixtures.RelativeDifference(w, expected).Should().BeLessThan(1e-12);
    }

    /// <summary>
    /// Per block = per tensor below the block size, so Shampoo's internal AdaGrad grafting (ε_g = 1e-10) is the closed-form
    /// graft of <c>TorchAdagrad(eps: 1e-10)</c> as M and Shampoo without grafting as D: ‖ΔM‖/‖ΔD‖·ΔD with ΔM = −η·A and
    /// ΔD = −1·P is −η·P·‖A‖/‖P‖, and both take 0 where ‖P‖ = 0. The conventions agree without translation: AdaGrad's
    /// V includes the current G² and ε is added outside the root in both. Roots start at step 1, because before its
    /// first root internal grafting takes A itself while the ungrafted D would take G. The shapes are all
    /// preconditioned ([3, 2, 5] merges into one 6×5 block): a vector takes A internally but G as an ungrafted D.
    /// </summary>
    [Fact]
    public void InternalAdaGradGraftingEqualsTheGraftOfAdaGradAndUngraftedShampoo()
    {
        long[][] shapes = { new long[] { 3, 5 }, new long[] { 4, 4 }, new long[] { 3, 2, 5 } };
        GraftHarness.Divergence(
            ps => ShampooOptimizer.Create(ps, lr: 0.1, max_preconditioner_dim: 6),
            ps => new GraftOptimizer(
                GenericSecondMomentOptimizer.TorchAdagrad(ps, lr: 0.1, eps: 1e-10),
                ShampooOptimizer.Create(ps, lr: 1, max_preconditioner_dim: 6, grafting: ShampooGrafting.None),
                new GraftOptions { Granularity = GraftGranularity.PerTensor, OwnsChildren = true }),
            10, shapes).Should().BeLessThanOrEqualTo(1e-10);
        using var probe = ShampooOptimizer.Create(Fixtures.MakeParameters(shapes), max_preconditioner_dim: 6);
        probe.StateOf(probe.Groups.Single().Parameters.Last()).MergedShape.Should().Equal(6, 5);
    }

    /// <summary>Shampoo as M of a closed-form graft: each step has Shampoo's step norm per tensor and Adam's direction.</summary>
    [Fact]
    public void ShampooAsMagnitudeGivesItsStepNormToAdamsDirection() =>
        GraftHarness.AssertNormOfMAndDirectionOfD(
            ps => new GraftOptimizer(ShampooOptimizer.Create(ps, lr: 0.1, momentum: 0.9), GenericSecondMomentOptimizer.TorchAdam(ps, lr: 1), new GraftOptions { OwnsChildren = true }),
            ps => ShampooOptimizer.Create(ps, lr: 0.1, momentum: 0.9), ps => GenericSecondMomentOptimizer.TorchAdam(ps, lr: 1),
            GraftGranularity.PerTensor, 0, 5, 1e-10);
}
