using AdaGraft.Rules;

namespace AdaGraft.Tests.Preconditioners;

/// <summary>
/// Muon on CUDA: CPU = CUDA to 1e-4 (float32, standalone and grafted), and bfloat16 Newton–Schulz close to
/// float32. These run where CUDA is available and are reported as skipped elsewhere.
/// </summary>
public class MuonCudaTests
{
    private static readonly long[][] Shapes = Fixtures.Shapes.Append(new long[] { 16, 8 }).ToArray();

    private static optim.Optimizer Make(string name, IList<Parameter> ps) => name switch {
        "muon+adamw" => MuonOptimizer.CreateWithAdamW(ps, lr: 0.02, weight_decay: 0.1, adjust_lr_fn: MuonSizeRule.MatchAdamWRms),
        "adam#muon" => MuonGraft.FromAdam(ps, lr: 0.01),
        _ => throw new ArgumentOutOfRangeException(nameof(name), name, "unknown"),
    };

    private static (List<Parameter> cpu, List<Parameter> gpu) Pair()
    {
        var cpu = Fixtures.MakeParameters(Shapes, ScalarType.Float32);
        return (cpu, Fixtures.CudaCopies(cpu));
    }

    [Theory]
    [InlineData("muon+adamw")]
    [InlineData("adam#muon")]
    public void CpuEqualsCuda(string name)
    {
        Assert.SkipUnless(torch.cuda.is_available(), "CUDA is not available on this machine.");
        Fixtures.CpuCudaDivergence(Shapes, ps => Make(name, ps), steps: 20).Should().BeLessThanOrEqualTo(1e-4);
    }

    /// <summary>bfloat16 Newton–Schulz on CUDA (the references' choice): finite, and within bfloat16's accuracy of float32.</summary>
    [Fact]
    public void BFloat16NewtonSchulzOnCudaStaysCloseToFloat32()
    {
        Assert.SkipUnless(torch.cuda.is_available(), "CUDA is not available on this machine.");
        var (cpu, gpu) = Pair();
        using var oc = MuonOptimizer.CreateWithAdamW(cpu, lr: 0.02);
        using var og = MuonOptimizer.CreateWithAdamW(gpu, lr: 0.02, ns_precision: NewtonSchulzPrecision.Bf16);
        for (int step = 0; step < 5; step++) {
            Fixtures.SetGradientsOnCpuAndCuda(cpu, gpu, step);
            oc.step();
            og.step();
        }
        var back = gpu.Select(p => new Parameter(p.detach().cpu())).ToList();
        back.Should().OnlyContain(p => TestTensors.AllFinite(p));
        Fixtures.MaxRelativeDifference(back, cpu).Should().BeInRange(1e-6, 2e-2, "bfloat16 rounds, but only that");
    }
}
