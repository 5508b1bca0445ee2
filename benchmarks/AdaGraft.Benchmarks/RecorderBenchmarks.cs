using AdaGraft.Diagnostics;
using BenchmarkDotNet.Attributes;

namespace AdaGraft.Benchmarks;

#pragma warning disable CA1001 // BenchmarkDotNet disposes through [GlobalCleanup].

/// <summary>Issue 4: what recording every step's norms adds to a grafted step (target ≤ 5%).</summary>
[MemoryDiagnoser]
public class RecorderBenchmarks : StepBenchmarkBase
{
    private GraftOptimizer _plain = null!, _recorded = null!;
    private StepNormRecorder _recorder = null!;

    [GlobalSetup]
    public void Setup()
    {
        CreateParameters();
        _plain = Workload.SgdAdaGradGraft(Parameters);
        _recorded = Workload.SgdAdaGradGraft(Parameters);
        _recorder = new StepNormRecorder(_recorded, new RecorderOptions { FlushEvery = 100 });
    }

    [Benchmark(Baseline = true, Description = "graft SGD#AdaGrad step")]
    public void Plain()
    {
        _plain.step();
        Sync();
    }

    [Benchmark(Description = "same step, recorded (flush every 100)")]
    public void Recorded()
    {
        _recorded.step();
        Sync();
    }

    public override void Cleanup()
    {
        _recorder.Dispose();
        _plain.Dispose();
        _recorded.Dispose();
        base.Cleanup();
    }
}
