namespace AdaGraft.Tests.Preconditioners;

/// <summary>SOAP as D (direction) and as M (magnitude) of a graft.</summary>
public class SoapGraftTests
{
    private static GraftOptions Options(GraftPath path = GraftPath.ClosedForm) =>
        new() { Granularity = GraftGranularity.PerTensor, Path = path, OwnsChildren = true };

    /// <summary>
    /// Adam#SOAP per tensor (closed form): each applied step has Adam's norm and SOAP's direction, to 1e-9, over 12
    /// steps with refreshes every 3; SOAP's first step proposes nothing, and the graft then does not move.
    /// </summary>
    [Fact]
    public void AdamSoapPerTensorHasAdamsStepNorm() =>
        GraftHarness.AssertNormOfMAndDirectionOfD(
            w => new GraftOptimizer(GenericSecondMomentOptimizer.TorchAdam(w, lr: 0.01), Soap(w), Options()),
            w => GenericSecondMomentOptimizer.TorchAdam(w, lr: 0.01), Soap, GraftGranularity.PerTensor, blockSize: 0, steps: 12, tolerance: 1e-9);

    private static SoapOptimizer Soap(IEnumerable<Parameter> w) => SoapOptimizer.Create(w, lr: 1, precondition_frequency: 3, precondition_1d: true);

    /// <summary>The closed form (SOAP's proposals) equals the black box (SOAP stepped in place), with SOAP as D and as M.</summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void ClosedFormEqualsBlackBox(bool soapIsMagnitude)
    {
        optim.Optimizer Adam(List<Parameter> w) => GenericSecondMomentOptimizer.TorchAdam(w, lr: soapIsMagnitude ? 1 : 0.01);
        optim.Optimizer M(List<Parameter> w) => soapIsMagnitude ? SoapOptimizer.Create(w, lr: 0.01, precondition_frequency: 3) : Adam(w);
        optim.Optimizer D(List<Parameter> w) => soapIsMagnitude ? Adam(w) : Soap(w);
        GraftHarness.Divergence(
            w => {
                var graft = new GraftOptimizer(M(w), D(w), Options());
                graft.IsClosedForm.Should().BeTrue();
                return graft;
            },
            w => new GraftOptimizer(M(w), D(w), Options(GraftPath.BlackBox)),
            steps: 12).Should().BeLessThanOrEqualTo(1e-9);
    }
}
