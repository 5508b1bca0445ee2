namespace AdaGraft.Tests.Preconditioners;

/// <summary>
/// SOAP on CUDA equals SOAP on the CPU (float32, identical gradients, 20 steps with refreshes every 3), standalone and
/// as D of a graft; and an optimizer moved with to(device) continues on the device. These run where CUDA is available
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
        var cpu = Fixtures.MakeParameters(Fixtures.Shapes, ScalarType.Float32);
        var gpu = cpu.Select(p => new Parameter(p.detach().clone().cuda())).ToList();
        using var oc = Make(cpu, graft);
        using var og = Make(gpu, graft);
        for (int step = 0; step < 20; step++) {
            Fixtures.SetGradients(cpu, step);
            for (int i = 0; i < cpu.Count; i++) gpu[i].grad = cpu[i].grad!.cuda();
            oc.step();
            og.step();
        }
        var back = gpu.Select(p => new Parameter(p.detach().cpu())).ToList();
        Fixtures.MaxRelativeDifference(back, cpu).Should().BeLessThanOrEqualTo(1e-4);
        Fixtures.MaxRelativeDifference(cpu, Fixtures.MakeParameters(Fixtures.Shapes, ScalarType.Float32)).Should().BeGreaterThan(1e-3);
    }

    private static optim.Optimizer Make(List<Parameter> ps, bool graft) => graft
        ? new GraftOptimizer(GenericSecondMomentOptimizer.TorchAdam(ps, lr: 0.01), SoapOptimizer.Create(ps, lr: 1, precondition_frequency: 3),
            new GraftOptions { OwnsChildren = true })
        : SoapOptimizer.Create(ps, lr: 0.01, precondition_frequency: 3, precondition_1d: true);

    /// <summary>Built on the CPU, stepped, moved with to(cuda) with its parameters: it continues as the CPU copy does.</summary>
    [Fact]
    public void ToCudaMovesFactorsAndBases()
    {
        Assert.SkipUnless(torch.cuda.is_available(), "CUDA is not available on this machine.");
        var cpu = Fixtures.MakeParameters(Fixtures.Shapes, ScalarType.Float32);
        var moving = Fixtures.Clone(cpu);
        using var oc = SoapOptimizer.Create(cpu, lr: 0.01, precondition_frequency: 3);
        using var om = SoapOptimizer.Create(moving, lr: 0.01, precondition_frequency: 3);
        for (int step = 0; step < 4; step++) {
            Fixtures.SetGradients(cpu, step);
            Fixtures.SetGradients(moving, step);
            oc.step();
            om.step();
        }
        using (torch.no_grad()) foreach (var p in moving) p.set_(p.cuda());
        om.to(torch.CUDA);
        om.StateOf(moving[1]).Basis(0)!.device_type.Should().Be(DeviceType.CUDA);
        for (int step = 4; step < 10; step++) {
            Fixtures.SetGradients(cpu, step);
            Fixtures.SetGradients(moving, step);
            oc.step();
            om.step();
        }
        var back = moving.Select(p => new Parameter(p.detach().cpu())).ToList();
        Fixtures.MaxRelativeDifference(back, cpu).Should().BeLessThanOrEqualTo(1e-4);
    }
}
