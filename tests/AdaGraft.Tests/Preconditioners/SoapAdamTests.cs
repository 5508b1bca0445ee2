namespace AdaGraft.Tests.Preconditioners;

/// <summary>
/// SOAP with every eigenbasis held at the identity is Adam: against TorchSharp's built-in Adam and AdamW, float64,
/// 20 steps, 1e-10. ε is 0 on both sides: SOAP adds ε to the uncorrected √v (as the reference does) and Adam to the
/// corrected one, so no ε &gt; 0 matches both; SOAP's decay after the step maps to AdamW's by its learning rate and decay.
/// </summary>
public class SoapAdamTests
{
    private const double Lr = 0.01, Beta1 = 0.9, Beta2 = 0.999;

    [Fact]
    public void IdentityBasisEqualsTorchAdam()
    {
        var a = Fixtures.MakeParameters(SoapTestSupport.Shapes);
        var b = Fixtures.Clone(a);
        using var soap = SoapOptimizer.Create(a, lr: Lr, beta1: Beta1, beta2: Beta2, eps: 0, weight_decay: 0, identity_basis: true);
        using var adam = optim.Adam(b, lr: Lr, beta1: Beta1, beta2: Beta2, eps: 0);
        SoapTestSupport.Run(soap, a, 20);
        SoapTestSupport.Run(adam, b, 20);
        Fixtures.MaxRelativeDifference(a, Fixtures.MakeParameters(SoapTestSupport.Shapes)).Should().BeGreaterThan(1e-2, "the parameters moved");
        Fixtures.MaxRelativeDifference(a, b).Should().BeLessThanOrEqualTo(1e-10);
        soap.StateOf(a[0]).Factor(0).Should().BeNull("an identity basis needs no factor");
    }

    /// <summary>
    /// With weight decay λ, SOAP's <c>(w − s·u)·(1 − η·λ)</c> is AdamW's <c>w·(1 − η′·λ′) − s′·u</c> with
    /// η′ = η·(1 − η·λ) and λ′ = λ/(1 − η·λ); AdamW with η and λ themselves differs.
    /// </summary>
    [Fact]
    public void IdentityBasisWithWeightDecayEqualsTorchAdamW()
    {
        const double wd = 0.5;
        double lrPrime = Lr * (1 - Lr * wd), wdPrime = wd / (1 - Lr * wd);
        var a = Fixtures.MakeParameters(SoapTestSupport.Shapes);
        var b = Fixtures.Clone(a);
        var c = Fixtures.Clone(a);
        using var soap = SoapOptimizer.Create(a, lr: Lr, beta1: Beta1, beta2: Beta2, eps: 0, weight_decay: wd, identity_basis: true);
        using var adamw = optim.AdamW(b, lr: lrPrime, beta1: Beta1, beta2: Beta2, eps: 0, weight_decay: wdPrime);
        using var naive = optim.AdamW(c, lr: Lr, beta1: Beta1, beta2: Beta2, eps: 0, weight_decay: wd);
        SoapTestSupport.Run(soap, a, 20);
        SoapTestSupport.Run(adamw, b, 20);
        SoapTestSupport.Run(naive, c, 20);
        Fixtures.MaxRelativeDifference(a, b).Should().BeLessThanOrEqualTo(1e-10);
        Fixtures.MaxRelativeDifference(a, c).Should().BeGreaterThan(1e-8, "the decay comes after the step, as in the reference, not before as in AdamW");
    }

    /// <summary>A real eigenbasis changes the steps: SOAP is not Adam on matrices (but is on scalars, which have no basis).</summary>
    [Fact]
    public void ARealBasisDiffersFromAdamOnMatricesOnly()
    {
        var a = Fixtures.MakeParameters(SoapTestSupport.Shapes);
        var b = Fixtures.Clone(a);
        using var soap = SoapOptimizer.Create(a, lr: Lr, beta1: Beta1, beta2: Beta2, eps: 0, weight_decay: 0);
        using var identity = SoapOptimizer.Create(b, lr: Lr, beta1: Beta1, beta2: Beta2, eps: 0, weight_decay: 0, identity_basis: true);
        // The real basis skips its first step (it only builds the basis): give the identity run the same gradients from step 1.
        SoapTestSupport.SetGradients(a, 0);
        soap.step();
        TestTensors.ShouldBeBitIdentical(Fixtures.Snapshot(a), Fixtures.Snapshot(b), "the first step only builds the bases");
        SoapTestSupport.Run(soap, a, 10, first: 1);
        SoapTestSupport.Run(identity, b, 10, first: 1);
        Fixtures.RelativeDifference(a[0].detach(), b[0].detach()).Should().BeGreaterThan(1e-4, "the matrix is rotated");
        Fixtures.RelativeDifference(a[1].detach(), b[1].detach()).Should().BeGreaterThan(1e-4, "the 3-d tensor is rotated");
        Fixtures.RelativeDifference(a[2].detach(), b[2].detach()).Should().Be(0, "a vector has no basis without precondition_1d");
        Fixtures.RelativeDifference(a[3].detach(), b[3].detach()).Should().Be(0, "a scalar has no basis");
    }

    /// <summary>ε = 0 is the pseudoinverse: a coordinate whose second moment is exactly 0 does not move (Adam: 0/0 = NaN).</summary>
    [Fact]
    public void EpsilonZeroLeavesAZeroSecondMomentStill()
    {
        var p = TestTensors.Vector(1.0, 2.0, 3.0);
        using var soap = SoapOptimizer.Create(new[] { p }, lr: 0.1, eps: 0, weight_decay: 0, identity_basis: true);
        for (int step = 0; step < 3; step++) {
            TestTensors.SetGrad(p, 0, 1, -2);
            soap.step();
        }
        var w = TestTensors.Values(p);
        w[0].Should().Be(1.0);
        w[1].Should().BeApproximately(2.0 - 0.3, 1e-12, "Adam's first steps have size lr for a constant gradient");
        w[2].Should().BeApproximately(3.0 + 0.3, 1e-12);
    }
}
