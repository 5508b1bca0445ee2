using BenchmarkDotNet.Attributes;

namespace AdaGraft.Benchmarks;

#pragma warning disable CA1001 // BenchmarkDotNet disposes through [GlobalCleanup].

/// <summary>Shared set-up: 10 float32 tensors of 1M elements with fixed gradients.</summary>
public abstract class StepBenchmarkBase
{
    [Params(10)]
    public int Tensors { get; set; }

    [Params(1_000_000)]
    public int Elements { get; set; }

    protected List<Parameter> Parameters { get; private set; } = new();

    protected static string DeviceName => Environment.GetEnvironmentVariable("ADAGRAFT_BENCH_DEVICE") ?? "cpu";

    protected void CreateParameters() => Parameters = Workload.Parameters(Tensors, Elements, torch.device(DeviceName));

    protected static void Sync()
    {
        if (DeviceName.StartsWith("cuda", StringComparison.Ordinal)) torch.cuda.synchronize();
    }

    [GlobalCleanup]
    public virtual void Cleanup()
    {
        foreach (var p in Parameters) p.Dispose();
    }
}

/// <summary>Issue 2: our Adam-convention step against TorchSharp's built-in Adam and a minimal in-place Adam.</summary>
[MemoryDiagnoser]
public class AdamStepBenchmarks : StepBenchmarkBase
{
    private GenericSecondMomentOptimizer _ours = null!, _oursEager = null!;
    private optim.Optimizer _builtIn = null!;
    private HandWrittenAdam _hand = null!;

    [GlobalSetup]
    public void Setup()
    {
        CreateParameters();
        _ours = GenericSecondMomentOptimizer.TorchAdam(Parameters, lr: 1e-3);
        _oursEager = GenericSecondMomentOptimizer.TorchAdam(Parameters, lr: 1e-3);
        _oursEager.FusedCpuKernel = false;
        _builtIn = optim.Adam(Parameters, lr: 1e-3);
        _hand = new HandWrittenAdam(Parameters, lr: 1e-3);
    }

    [Benchmark(Baseline = true, Description = "hand-written in-place Adam")]
    public void HandWritten()
    {
        _hand.Step();
        Sync();
    }

    [Benchmark(Description = "AdaGraft TorchAdam preset")]
    public void Ours()
    {
        _ours.step();
        Sync();
    }

    [Benchmark(Description = "AdaGraft TorchAdam preset, eager (FusedCpuKernel off)")]
    public void OursEager()
    {
        _oursEager.step();
        Sync();
    }

    [Benchmark(Description = "TorchSharp built-in Adam")]
    public void BuiltIn()
    {
        _builtIn.step();
        Sync();
    }

    public override void Cleanup()
    {
        _ours.Dispose();
        _oursEager.Dispose();
        _builtIn.Dispose();
        _hand.Dispose();
        base.Cleanup();
    }
}

/// <summary>Issue 3: grafted SGD#Adam, closed form and black box, against the steps it is made of.</summary>
[MemoryDiagnoser]
public class GraftStepBenchmarks : StepBenchmarkBase
{
    private GenericSecondMomentOptimizer _sgd = null!, _adam = null!, _sgdEager = null!, _adamEager = null!;
    private GraftOptimizer _closed = null!, _closedEager = null!;
    private optim.Optimizer _builtInSgd = null!, _builtInAdam = null!;
    private GraftOptimizer _blackBox = null!, _blackBoxEager = null!;
    private Tensor[] _scratch = Array.Empty<Tensor>();

    [GlobalSetup]
    public void Setup()
    {
        CreateParameters();
        _sgd = GenericSecondMomentOptimizer.HeavyBall(Parameters, lr: 1e-3);
        _adam = GenericSecondMomentOptimizer.TorchAdam(Parameters, lr: 1e-3);
        _closed = Workload.SgdAdamGraft(Parameters);
        _sgdEager = GenericSecondMomentOptimizer.HeavyBall(Parameters, lr: 1e-3);
        _adamEager = GenericSecondMomentOptimizer.TorchAdam(Parameters, lr: 1e-3);
        _sgdEager.FusedCpuKernel = false;
        _adamEager.FusedCpuKernel = false;
        _closedEager = Workload.SgdAdamGraft(Parameters, new GraftOptions { FusedCpuKernel = false });
        _builtInSgd = optim.SGD(Parameters, 1e-3, momentum: 0.9);
        _builtInAdam = optim.Adam(Parameters, lr: 1e-3);
        _blackBox = Workload.BuiltInBlackBox(Parameters);
        _blackBoxEager = Workload.BuiltInBlackBox(Parameters, new GraftOptions { FusedCpuKernel = false });
        _scratch = Parameters.Select(p => torch.empty_like(p)).ToArray();
    }

    [Benchmark(Baseline = true, Description = "our SGD step + our Adam step")]
    public void OurTwoSteps()
    {
        _sgd.step();
        _adam.step();
        Sync();
    }

    [Benchmark(Description = "closed-form graft SGD#Adam")]
    public void ClosedForm()
    {
        _closed.step();
        Sync();
    }

    [Benchmark(Description = "our SGD step + our Adam step, eager")]
    public void OurTwoStepsEager()
    {
        _sgdEager.step();
        _adamEager.step();
        Sync();
    }

    [Benchmark(Description = "closed-form graft SGD#Adam, eager")]
    public void ClosedFormEager()
    {
        _closedEager.step();
        Sync();
    }

    [Benchmark(Description = "built-in SGD step + built-in Adam step + 2 copies")]
    public void BuiltInTwoStepsAndCopies()
    {
        _builtInSgd.step();
        _builtInAdam.step();
        using (torch.no_grad()) {
            for (int i = 0; i < _scratch.Length; i++) _scratch[i].copy_(Parameters[i]);
            for (int i = 0; i < _scratch.Length; i++) Parameters[i].copy_(_scratch[i]);
        }
        Sync();
    }

    [Benchmark(Description = "black-box graft of built-in SGD#Adam")]
    public void BlackBox()
    {
        _blackBox.step();
        Sync();
    }

    [Benchmark(Description = "black-box graft of built-in SGD#Adam, eager")]
    public void BlackBoxEager()
    {
        _blackBoxEager.step();
        Sync();
    }

    public override void Cleanup()
    {
        _sgd.Dispose();
        _adam.Dispose();
        _closed.Dispose();
        _sgdEager.Dispose();
        _adamEager.Dispose();
        _closedEager.Dispose();
        _builtInSgd.Dispose();
        _builtInAdam.Dispose();
        _blackBox.Dispose();
        _blackBoxEager.Dispose();
        foreach (var t in _scratch) t.Dispose();
        base.Cleanup();
    }
}

/// <summary>
/// Many small tensors (100 × 1,000 float32, like a model's biases and norms): here a step is dominated by per-tensor
/// host work (the regime a GPU step is in), not by memory traffic.
/// </summary>
[MemoryDiagnoser]
public class SmallTensorGraftBenchmarks
{
    [Params(100)]
    public int Tensors { get; set; }

    [Params(1_000)]
    public int Elements { get; set; }

    private List<Parameter> _ps = new();
    private GenericSecondMomentOptimizer _sgd = null!, _adam = null!, _sgdEager = null!, _adamEager = null!;
    private GraftOptimizer _closed = null!, _closedEager = null!;

    [GlobalSetup]
    public void Setup()
    {
        _ps = Workload.Parameters(Tensors, Elements);
        _sgd = GenericSecondMomentOptimizer.HeavyBall(_ps, lr: 1e-3);
        _adam = GenericSecondMomentOptimizer.TorchAdam(_ps, lr: 1e-3);
        _sgdEager = GenericSecondMomentOptimizer.HeavyBall(_ps, lr: 1e-3);
        _adamEager = GenericSecondMomentOptimizer.TorchAdam(_ps, lr: 1e-3);
        _sgdEager.FusedCpuKernel = false;
        _adamEager.FusedCpuKernel = false;
        _closed = Workload.SgdAdamGraft(_ps);
        _closedEager = Workload.SgdAdamGraft(_ps, new GraftOptions { FusedCpuKernel = false });
    }

    [Benchmark(Baseline = true, Description = "our SGD step + our Adam step")]
    public void OurTwoSteps()
    {
        _sgd.step();
        _adam.step();
    }

    [Benchmark(Description = "closed-form graft SGD#Adam")]
    public void ClosedForm() => _closed.step();

    [Benchmark(Description = "our SGD step + our Adam step, eager")]
    public void OurTwoStepsEager()
    {
        _sgdEager.step();
        _adamEager.step();
    }

    [Benchmark(Description = "closed-form graft SGD#Adam, eager")]
    public void ClosedFormEager() => _closedEager.step();

    [GlobalCleanup]
    public void Cleanup()
    {
        _sgd.Dispose();
        _adam.Dispose();
        _sgdEager.Dispose();
        _adamEager.Dispose();
        _closed.Dispose();
        _closedEager.Dispose();
        foreach (var p in _ps) p.Dispose();
    }
}

/// <summary>
/// Cost per tensor: the same 10M float32 parameters as 10 × 1M and as 1,000 × 10k (a transformer has hundreds of
/// tensors). Every case is compared with the fused TorchAdam step over 10 × 1M; the per-tensor host work (checks,
/// plans, version bumps, dispatch) is what separates each 1,000-tensor case from its 10-tensor twin.
/// </summary>
[MemoryDiagnoser]
public class TensorCountBenchmarks
{
    private List<Parameter> _few = new(), _many = new();
    private GenericSecondMomentOptimizer _adamFew = null!, _adamMany = null!;
    private GraftOptimizer _graftFew = null!, _graftMany = null!;

    [GlobalSetup]
    public void Setup()
    {
        _few = Workload.Parameters(10, 1_000_000);
        _many = Workload.Parameters(1_000, 10_000);
        _adamFew = GenericSecondMomentOptimizer.TorchAdam(_few, lr: 1e-3);
        _adamMany = GenericSecondMomentOptimizer.TorchAdam(_many, lr: 1e-3);
        _graftFew = Workload.SgdAdamGraft(_few);
        _graftMany = Workload.SgdAdamGraft(_many);
    }

    [Benchmark(Baseline = true, Description = "fused TorchAdam, 10 x 1M")]
    public void AdamFew() => _adamFew.step();

    [Benchmark(Description = "fused TorchAdam, 1000 x 10k")]
    public void AdamMany() => _adamMany.step();

    [Benchmark(Description = "fused closed-form SGD#Adam, 10 x 1M")]
    public void GraftFew() => _graftFew.step();

    [Benchmark(Description = "fused closed-form SGD#Adam, 1000 x 10k")]
    public void GraftMany() => _graftMany.step();

    [GlobalCleanup]
    public void Cleanup()
    {
        _adamFew.Dispose();
        _adamMany.Dispose();
        _graftFew.Dispose();
        _graftMany.Dispose();
        foreach (var p in _few.Concat(_many)) p.Dispose();
    }
}
