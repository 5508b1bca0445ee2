using BenchmarkDotNet.Attributes;

namespace AdaGraft.Benchmarks;

#pragma warning disable CA1001 // BenchmarkDotNet disposes through [GlobalCleanup].

/// <summary>
/// Issue 7: one step of every direction-zoo optimizer over 10 float32 tensors of 1M elements, against our TorchAdam
/// preset. Adafactor is measured twice: on the vectors (full accumulator) and on the same data viewed as
/// 1000 × (Elements/1000) matrices (factored accumulators).
/// </summary>
[MemoryDiagnoser]
public class ZooBenchmarks : StepBenchmarkBase
{
    private readonly List<optim.Optimizer> _all = new();
    private List<Parameter> _matrices = new();
    private optim.Optimizer _adam = null!, _amsGrad = null!, _yogi = null!, _adafactor = null!, _adafactorFactored = null!;
    private optim.Optimizer _lamb = null!, _lars = null!, _novoGrad = null!, _lion = null!;

    [GlobalSetup]
    public void Setup()
    {
        CreateParameters();
        _matrices = Parameters.Select(p => {
            var m = new Parameter(p.detach().view(1000, Elements / 1000));
            m.grad = p.grad!.view(1000, Elements / 1000);
            return m;
        }).ToList();
        _adam = Add(GenericSecondMomentOptimizer.TorchAdam(Parameters, lr: 1e-3));
        _amsGrad = Add(GenericSecondMomentOptimizer.AmsGrad(Parameters, lr: 1e-3));
        _yogi = Add(YogiOptimizer.Create(Parameters, lr: 1e-3));
        _adafactor = Add(AdafactorOptimizer.Create(Parameters, lr: 1e-3));
        _adafactorFactored = Add(AdafactorOptimizer.Create(_matrices, lr: 1e-3));
        _lamb = Add(LambOptimizer.Create(Parameters, lr: 1e-3));
        _lars = Add(LarsOptimizer.Create(Parameters, lr: 1e-3, weight_decay: 1e-4));
        _novoGrad = Add(NovoGradOptimizer.Create(Parameters, lr: 1e-3, weight_decay: 1e-3));
        _lion = Add(LionOptimizer.Create(Parameters, lr: 1e-4, weight_decay: 0.1));
    }

    private optim.Optimizer Add(optim.Optimizer opt)
    {
        _all.Add(opt);
        return opt;
    }

    private static void Step(optim.Optimizer opt)
    {
        opt.step();
        Sync();
    }

    [Benchmark(Baseline = true, Description = "TorchAdam preset")]
    public void Adam() => Step(_adam);

    [Benchmark(Description = "AMSGrad preset")]
    public void AmsGrad() => Step(_amsGrad);

    [Benchmark(Description = "Yogi")]
    public void Yogi() => Step(_yogi);

    [Benchmark(Description = "Adafactor (vectors, full accumulator)")]
    public void Adafactor() => Step(_adafactor);

    [Benchmark(Description = "Adafactor (matrices, factored)")]
    public void AdafactorFactored() => Step(_adafactorFactored);

    [Benchmark(Description = "LAMB")]
    public void Lamb() => Step(_lamb);

    [Benchmark(Description = "LARS")]
    public void Lars() => Step(_lars);

    [Benchmark(Description = "NovoGrad")]
    public void NovoGrad() => Step(_novoGrad);

    [Benchmark(Description = "Lion")]
    public void Lion() => Step(_lion);

    public override void Cleanup()
    {
        foreach (var opt in _all) opt.Dispose();
        foreach (var m in _matrices) m.Dispose();
        base.Cleanup();
    }
}
