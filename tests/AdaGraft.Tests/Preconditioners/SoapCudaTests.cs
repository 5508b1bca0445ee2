namespace AdaGraft.Tests.Preconditioners;

/// <summary>
/// SOAP on CUDA equals SOAP on the CPU (float32, identical gradients, 20 steps with refreshes every 3), standalone and
/// as D of a graft; and to(device) moves the state there and back exactly. These run where CUDA is available
/// and are reported as skipped elsewhere (the pattern of <see cref="CudaTests"/>).
/// </summary>
public class SoapCudaTests
{
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void CpuEqualsCuda(bool graft)
    {
        Assert.SkipUnless(torch.cuda.is_available(), "CUDA is not available on this machine.");
        var cpu = Fixtures.MakeParameters(SoapTestSupport.Shapes, ScalarType.Float32);
        var gpu = Fixtures.CudaCopies(cpu);
        using var oc = Make(cpu, graft);
        using var og = Make(gpu, graft);
        // The gradients are drawn on the CPU and moved, so both devices get the same numbers.
        SoapTestSupport.Run(oc, cpu, 20);
        SoapTestSupport.Run(og, gpu, 20);
        var back = gpu.Select(p => new Parameter(p.detach().cpu())).ToList();
        Fixtures.MaxRelativeDifference(back, cpu).Should().BeLessThanOrEqualTo(1e-4);
        Fixtures.MaxRelativeDifference(cpu, Fixtures.MakeParameters(SoapTestSupport.Shapes, ScalarType.Float32)).Should().BeGreaterThan(1e-3);
    }

    private static optim.Optimizer Make(List<Parameter> ps, bool graft) => graft
        ? new GraftOptimizer(GenericSecondMomentOptimizer.TorchAdam(ps, lr: 0.01), SoapOptimizer.Create(ps, lr: 1, precondition_frequency: 3),
            new GraftOptions { OwnsChildren = true })
        : SoapOptimizer.Create(ps, lr: 0.01, precondition_frequency: 3, precondition_1d: true);

    /// <summary>
    /// to(cuda) moves the factors, bases and moments to the device, and back to(CPU) they are exactly what they were:
    /// the optimizer continues bit-identically with a copy that never moved.
    /// </summary>
    [Fact]
    public void ToCudaAndBackMovesFactorsAndBasesExactly()
    {
        Assert.SkipUnless(torch.cuda.is_available(), "CUDA is not available on this machine.");
        var still = Fixtures.MakeParameters(SoapTestSupport.Shapes);
        var moving = Fixtures.Clone(still);
        using var os = SoapOptimizer.Create(still, lr: 0.01, precondition_frequency: 3);
        using var om = SoapOptimizer.Create(moving, lr: 0.01, precondition_frequency: 3);
        SoapTestSupport.Run(os, still, 4);
        SoapTestSupport.Run(om, moving, 4);
        om.to(torch.CUDA);
        var state = om.StateOf(moving[1]);
        new[] { state.Basis(0)!, state.Factor(2)!, state.FirstMoment!, state.SecondMoment! }
            .Select(t => t.device_type).Should().OnlyContain(d => d == DeviceType.CUDA);
        om.to(CPU);
        SoapTestSupport.Run(os, still, 6, first: 4);
        SoapTestSupport.Run(om, moving, 6, first: 4);
        TestTensors.ShouldBeBitIdentical(Fixtures.Snapshot(moving), Fixtures.Snapshot(still));
    }
}
