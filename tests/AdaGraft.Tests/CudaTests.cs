namespace AdaGraft.Tests;

/// <summary>
/// CPU = CUDA: the same optimizer on float32 CPU and CUDA tensors, fed identical gradients, stays within 1e-5.
/// These run where CUDA is available (the GPU machine, see shared/gpu) and are reported as skipped elsewhere.
/// </summary>
public class CudaTests
{
    public static readonly TheoryData<string> Configs = new() {
        "torch-adam", "torch-sgd-nesterov", "torch-adagrad", "torch-rmsprop", "paper-adagrad", "paper-adam",
        "graft-sgd#adam-tensor-closed", "graft-sgd#adam-global-closed", "graft-adagrad#adam-block-closed",
        "graft-sgd#adam-tensor-blackbox", "graft-builtin-sgd#adam-tensor-blackbox",
        "yogi", "adafactor", "lamb", "lars", "novograd", "lion", "graft-adagrad#adafactor-tensor-closed",
        "nadam", "radam", "adamax", "adadelta", "rmsprop-centered", "graft-sgd#nadam-tensor-closed",
    };

    internal static optim.Optimizer Make(string name, IList<Parameter> ps) => name switch {
        "torch-adam" => GenericSecondMomentOptimizer.TorchAdam(ps, lr: 0.01, weight_decay: 0.01),
        "torch-sgd-nesterov" => GenericSecondMomentOptimizer.TorchSgd(ps, 0.05, momentum: 0.9, nesterov: true),
        "torch-adagrad" => GenericSecondMomentOptimizer.TorchAdagrad(ps, lr: 0.1),
        "torch-rmsprop" => GenericSecondMomentOptimizer.TorchRmsProp(ps, lr: 0.01, momentum: 0.9),
        "paper-adagrad" => GenericSecondMomentOptimizer.AdaGrad(ps, 0.1),
        "paper-adam" => GenericSecondMomentOptimizer.Adam(ps, 0.01),
        "graft-sgd#adam-tensor-closed" => Graft(GenericSecondMomentOptimizer.HeavyBall(ps, 0.02), GenericSecondMomentOptimizer.Adam(ps, 1), GraftGranularity.PerTensor, GraftPath.ClosedForm),
        "graft-sgd#adam-global-closed" => Graft(GenericSecondMomentOptimizer.HeavyBall(ps, 0.02), GenericSecondMomentOptimizer.Adam(ps, 1), GraftGranularity.Global, GraftPath.ClosedForm),
        "graft-adagrad#adam-block-closed" => Graft(GenericSecondMomentOptimizer.AdaGrad(ps, 0.1), GenericSecondMomentOptimizer.Adam(ps, 1), GraftGranularity.PerBlock, GraftPath.ClosedForm),
        "graft-sgd#adam-tensor-blackbox" => Graft(GenericSecondMomentOptimizer.HeavyBall(ps, 0.02), GenericSecondMomentOptimizer.Adam(ps, 1), GraftGranularity.PerTensor, GraftPath.BlackBox),
        "graft-builtin-sgd#adam-tensor-blackbox" => Graft(optim.SGD(ps, 0.02, momentum: 0.9), optim.Adam(ps, lr: 1), GraftGranularity.PerTensor, GraftPath.BlackBox),
        "yogi" => YogiOptimizer.Create(ps, 0.01),
        "adafactor" => AdafactorOptimizer.Create(ps, 0.01, beta1: 0.9),
        "lamb" => LambOptimizer.Create(ps, 0.01),
        "lars" => LarsOptimizer.Create(ps, 0.1),
        "novograd" => NovoGradOptimizer.Create(ps, 0.01, weight_decay: 0.01),
        "lion" => LionOptimizer.Create(ps, 1e-3, weight_decay: 0.1),
        "nadam" => NAdamOptimizer.Create(ps, 0.01, weight_decay: 0.01),
        "radam" => RAdamOptimizer.Create(ps, 0.05, beta2: 0.99),
        "adamax" => AdamaxOptimizer.Create(ps, 0.01, weight_decay: 0.01),
        "adadelta" => AdadeltaOptimizer.Create(ps, 1.0, weight_decay: 0.01),
        "rmsprop-centered" => RmsPropOptimizer.CenteredRmsProp(ps, 0.01, momentum: 0.9),
        "graft-sgd#nadam-tensor-closed" => Graft(GenericSecondMomentOptimizer.HeavyBall(ps, 0.02), NAdamOptimizer.Create(ps, 1), GraftGranularity.PerTensor, GraftPath.ClosedForm),
        "graft-adagrad#adafactor-tensor-closed" => Graft(GenericSecondMomentOptimizer.AdaGrad(ps, 0.1), AdafactorOptimizer.Create(ps, 1), GraftGranularity.PerTensor, GraftPath.ClosedForm),
        _ => throw new ArgumentOutOfRangeException(nameof(name), name, "unknown"),
    };

    private static GraftOptimizer Graft(optim.Optimizer m, optim.Optimizer d, GraftGranularity g, GraftPath path) =>
        new(m, d, new GraftOptions { Granularity = g, Path = path, BlockSize = 5, OwnsChildren = true });

    [Theory]
    [MemberData(nameof(Configs))]
    public void CpuEqualsCuda(string name)
    {
        Assert.SkipUnless(torch.cuda.is_available(), "CUDA is not available on this machine.");
        Fixtures.CpuCudaDivergence(Fixtures.Shapes, ps => Make(name, ps), steps: 20).Should().BeLessThanOrEqualTo(1e-5);
    }

    [Fact]
    public void SkipNonFiniteStepsOnCudaLeavesNoTrace()
    {
        Assert.SkipUnless(torch.cuda.is_available(), "CUDA is not available on this machine.");
        var cpu = Fixtures.MakeParameters(Fixtures.Shapes, ScalarType.Float32);
        var gpu = Fixtures.CudaCopies(cpu);
        using var reference = new GraftOptimizer(GenericSecondMomentOptimizer.HeavyBall(cpu, 0.02), GenericSecondMomentOptimizer.Adam(cpu, 1), new GraftOptions { OwnsChildren = true });
        using var guarded = new GraftOptimizer(GenericSecondMomentOptimizer.HeavyBall(gpu, 0.02), GenericSecondMomentOptimizer.Adam(gpu, 1), new GraftOptions { OwnsChildren = true });
        guarded.SkipNonFiniteSteps = true;
        for (int step = 0; step < 12; step++) {
            Fixtures.SetGradientsOnCpuAndCuda(cpu, gpu, step);
            if (step is 3 or 7) {
                using (torch.no_grad()) gpu[0].grad!.view(-1)[1] = float.NaN;
                guarded.step();
                continue;
            }
            guarded.step();
            reference.step();
        }
        guarded.SkippedSteps.Should().Be(2);
        var back = gpu.Select(p => new Parameter(p.detach().cpu())).ToList();
        Fixtures.MaxRelativeDifference(back, cpu).Should().BeLessThanOrEqualTo(1e-5);
    }

    [Fact]
    public void RecorderOnCudaRecordsWhatTheCpuRecords()
    {
        Assert.SkipUnless(torch.cuda.is_available(), "CUDA is not available on this machine.");
        var cpu = Fixtures.MakeParameters(Fixtures.Shapes, ScalarType.Float32);
        var gpu = Fixtures.CudaCopies(cpu);
        using var gc = new GraftOptimizer(GenericSecondMomentOptimizer.HeavyBall(cpu, 0.02), GenericSecondMomentOptimizer.AdaGrad(cpu, 1), new GraftOptions { OwnsChildren = true });
        using var gg = new GraftOptimizer(GenericSecondMomentOptimizer.HeavyBall(gpu, 0.02), GenericSecondMomentOptimizer.AdaGrad(gpu, 1), new GraftOptions { OwnsChildren = true });
        using var rc = new AdaGraft.Diagnostics.StepNormRecorder(gc, new AdaGraft.Diagnostics.RecorderOptions { FlushEvery = 4 });
        using var rg = new AdaGraft.Diagnostics.StepNormRecorder(gg, new AdaGraft.Diagnostics.RecorderOptions { FlushEvery = 4 });
        for (int step = 0; step < 10; step++) {
            Fixtures.SetGradientsOnCpuAndCuda(cpu, gpu, step);
            gc.step();
            gg.step();
        }
        var a = rc.Records();
        var b = rg.Records();
        b.Should().HaveCount(a.Count);
        for (int i = 0; i < a.Count; i++) b[i].Ratio.Should().BeApproximately(a[i].Ratio, 1e-5 * Math.Max(1, a[i].Ratio));
    }
}
