namespace AdaGraft.Tests.Preconditioners;

/// <summary>
/// SOAP on CUDA equals SOAP on the CPU (float32, identical gradients, 20 steps with refreshes every 3), standalone and
/// as D of a graft; and to(device) moves the state there and back exactly. These run where CUDA is available
/// and are reported as skipped elsewhere (the pattern of <see cref="CudaTests"/>).
/// </summary>
public class SoapCudaTests
{
    /// <summary>
    /// The 1-D tensor has 2 elements, not <see cref="SoapTestSupport.Shapes"/>' 5: with <c>precondition_1d</c> its first
    /// factor g·gᵀ has rank 1, and eigh may pick any basis of the null space it leaves: 4 dimensions at length 5 (Adam's
    /// per-coordinate moments in that basis then differ between eigensolvers: 0.46 % between CPU float32 and float64,
    /// 0.96 % between CPU and CUDA in the first GPU run), but only a sign at length 2, which changes nothing. With it,
    /// float32 and float64 agree to 6e-7 on the CPU.
    /// </summary>
    [Theory]
    [InlineData(false, ScalarType.Float32, 1e-5)]
    [InlineData(true, ScalarType.Float32, 1e-5)]
    [InlineData(false, ScalarType.Float64, 1e-9)]
    [InlineData(true, ScalarType.Float64, 1e-9)]
    public void CpuEqualsCuda(bool graft, ScalarType dtype, double tolerance)
    {
        Assert.SkipUnless(torch.cuda.is_available(), "CUDA is not available on this machine.");
        long[][] shapes = { new long[] { 4, 3 }, new long[] { 2, 3, 4 }, new long[] { 2 }, Array.Empty<long>() };
        var cpu = Fixtures.MakeParameters(shapes, dtype);
        var gpu = Fixtures.CudaCopies(cpu);
        using var oc = Make(cpu, graft);
        using var og = Make(gpu, graft);
        // The gradients are drawn on the CPU and moved, so both devices get the same numbers.
        SoapTestSupport.Run(oc, cpu, 20);
        SoapTestSupport.Run(og, gpu, 20);
        var back = gpu.Select(p => new Parameter(p.detach().cpu())).ToList();
        Fixtures.MaxRelativeDifference(back, cpu).Should().BeLessThanOrEqualTo(tolerance);
        Fixtures.MaxRelativeDifference(cpu, Fixtures.MakeParameters(shapes, dtype)).Should().BeGreaterThan(1e-3);
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
