using AdaGraft.Benchmarks;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Running;
using BenchmarkDotNet.Toolchains.InProcess.Emit;

if (args.Length > 0 && args[0] == "--device-timing") {
    DeviceTiming.Run(args.Length > 1 ? args[1] : "cuda", args.Length > 2 ? long.Parse(args[2], System.Globalization.CultureInfo.InvariantCulture) : 10_000_000);
    return;
}
if (args.Length > 0 && args[0] == "--ab-timing") {
    AbTiming.Run(args.Length > 1 ? int.Parse(args[1], System.Globalization.CultureInfo.InvariantCulture) : 40,
        args.Length > 2 ? long.Parse(args[2], System.Globalization.CultureInfo.InvariantCulture) : 1_000_000,
        args.Length > 3 ? int.Parse(args[3], System.Globalization.CultureInfo.InvariantCulture) : 5,
        args.Length > 4 ? args[4].Split(',').Select(c => int.Parse(c, System.Globalization.CultureInfo.InvariantCulture)).ToArray() : null);
    return;
}
if (args.Length > 0 && args[0] == "--loop-timing") {
    TrainingLoopTiming.Run(args.Length > 1 ? int.Parse(args[1], System.Globalization.CultureInfo.InvariantCulture) : 12,
        args.Length > 2 ? int.Parse(args[2], System.Globalization.CultureInfo.InvariantCulture) : 10);
    return;
}
if (args.Length > 0 && args[0] == "--tensor-count-ab") {
    KernelLayout.RunSteps(args.Length > 1 ? int.Parse(args[1], System.Globalization.CultureInfo.InvariantCulture) : 40);
    return;
}
if (args.Length > 0 && args[0] == "--kernel-layout") {
    KernelLayout.Run();
    return;
}
if (args.Length > 0 && args[0] == "--check-timing") {
    CheckTiming.Run(args.Length > 1 ? int.Parse(args[1], System.Globalization.CultureInfo.InvariantCulture) : 1000,
        args.Length > 2 ? long.Parse(args[2], System.Globalization.CultureInfo.InvariantCulture) : 10_000);
    return;
}
if (args.Length > 0 && args[0] == "--flat-experiment") {
    FlatGraftExperiment.Run(args.Length > 1 ? args[1] : "cuda", args.Length > 2 ? long.Parse(args[2], System.Globalization.CultureInfo.InvariantCulture) : 10_000_000);
    return;
}
if (args.Length > 0 && args[0] == "--cuda-kernel-experiment") {
    CudaKernelExperiment.Run(args.Length > 1 ? long.Parse(args[1], System.Globalization.CultureInfo.InvariantCulture) : 10_000_000);
    return;
}
if (args.Length > 0 && args[0] == "--kernel-timing-blackbox") {
    KernelTiming.RunBlackBox(args.Length > 1 ? long.Parse(args[1], System.Globalization.CultureInfo.InvariantCulture) : 1_000_000);
    return;
}
if (args.Length > 0 && args[0] == "--kernel-shapes") {
    KernelShapes.Run(long.Parse(args[1], System.Globalization.CultureInfo.InvariantCulture));
    return;
}
if (args.Length > 0 && args[0] == "--kernel-timing") {
    KernelTiming.Run(args.Length > 1 ? long.Parse(args[1], System.Globalization.CultureInfo.InvariantCulture) : 1_000_000);
    return;
}

// In-process: BenchmarkDotNet's generated projects would copy an unpatched libLibTorchSharp.so (see docs/architecture.md, Older Linux).
// One step per invocation; BenchmarkDotNet's pilot stage picks how many steps make a 250 ms iteration (its
// MinIterationTime rule: shorter iterations let one slow phase of a noisy machine dominate a case), then 3 warm-up and
// 15 measured iterations.
var job = Job.Default
    .WithToolchain(InProcessEmitToolchain.Instance)
    .WithWarmupCount(3)
    .WithIterationCount(15)
    .WithIterationTime(Perfolizer.Horology.TimeInterval.FromMilliseconds(250))
    .WithUnrollFactor(1);
var config = DefaultConfig.Instance.AddJob(job.AsDefault()).WithOptions(ConfigOptions.DisableOptimizationsValidator);
BenchmarkSwitcher.FromAssembly(typeof(StepBenchmarkBase).Assembly).Run(args, config);
Console.WriteLine();
