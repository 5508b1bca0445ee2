using System;
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
        args.Length > 2 ? long.Parse(args[2], System.Globalization.CultureInfo.InvariantCulture) : 1_000_000);
    return;
}
if (args.Length > 0 && args[0] == "--flat-experiment") {
    FlatGraftExperiment.Run(args.Length > 1 ? args[1] : "cuda", args.Length > 2 ? long.Parse(args[2], System.Globalization.CultureInfo.InvariantCulture) : 10_000_000);
    return;
}
if (args.Length > 0 && args[0] == "--kernel-timing") {
    KernelTiming.Run(args.Length > 1 ? long.Parse(args[1], System.Globalization.CultureInfo.InvariantCulture) : 1_000_000);
    return;
}

// In-process: BenchmarkDotNet's generated projects would copy an unpatched libLibTorchSharp.so (see README, Older Linux).
// One step per invocation; 3 warm-up and 10 measured iterations of 4 steps each keep a full run to a few minutes.
var job = Job.Default
    .WithToolchain(InProcessEmitToolchain.Instance)
    .WithWarmupCount(3)
    .WithIterationCount(10)
    .WithInvocationCount(4)
    .WithUnrollFactor(1);
var config = DefaultConfig.Instance.AddJob(job.AsDefault()).WithOptions(ConfigOptions.DisableOptimizationsValidator);
BenchmarkSwitcher.FromAssembly(typeof(StepBenchmarkBase).Assembly).Run(args, config);
Console.WriteLine();
