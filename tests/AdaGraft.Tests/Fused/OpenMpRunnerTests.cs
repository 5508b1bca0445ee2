using AdaGraft.Rules;

namespace AdaGraft.Tests.Fused;

/// <summary>These tests switch a process-wide runner, so nothing else runs beside them.</summary>
[CollectionDefinition(nameof(ProcessWideRunnerTests), DisableParallelization = true)]
public sealed class ProcessWideRunnerTests
{
}

/// <summary>
/// The fused kernels' parallel loops run on libtorch's OpenMP team (on Linux, where libtorch loads libgomp), with the
/// .NET thread pool as the fallback; both give the same bits.
/// </summary>
[Collection(nameof(ProcessWideRunnerTests))]
public class OpenMpRunnerTests
{
    private static double[][] FourSteps(Func<List<Parameter>, optim.Optimizer> make)
    {
        var w = Fixtures.MakeParameters(new[] { new long[] { 200_003 }, new long[] { 70_001 }, new long[] { 5 } }, ScalarType.Float32);
        using var opt = make(w);
        Fixtures.Run(opt, w, 0, 4);
        return Fixtures.Snapshot(w);
    }

    private static readonly Func<List<Parameter>, optim.Optimizer>[] Makers = {
        w => GenericSecondMomentOptimizer.TorchAdam(w, lr: 0.01),
        w => new GraftOptimizer(GenericSecondMomentOptimizer.HeavyBall(w, 0.01), GenericSecondMomentOptimizer.TorchAdam(w, lr: 1),
            new GraftOptions { OwnsChildren = true }),
        w => new GraftOptimizer(GenericSecondMomentOptimizer.HeavyBall(w, 0.01), GenericSecondMomentOptimizer.AdaGrad(w, 1),
            new GraftOptions { OwnsChildren = true, Granularity = GraftGranularity.Global }),
        w => new GraftOptimizer(optim.SGD(w, 0.01, momentum: 0.9), optim.Adam(w, lr: 1),
            new GraftOptions { OwnsChildren = true, Path = GraftPath.BlackBox }),
    };

    [Fact]
    public void OpenMpAndThreadPoolGiveTheSameBits()
    {
        Assert.SkipWhen(torch.get_num_threads() < 2, "one torch thread: nothing runs in parallel on either runner");
        bool before = CpuSwitches.OpenMpRunner;
        try {
            foreach (var make in Makers) {
                CpuSwitches.OpenMpRunner = true;
                long loops = OpenMpRunner.Loops;
                var omp = FourSteps(make);
                if (OperatingSystem.IsLinux()) OpenMpRunner.Loops.Should().BeGreaterThan(loops, "libtorch's libgomp is loaded on Linux: {0}", OpenMpRunner.Library);
                CpuSwitches.OpenMpRunner = false;
                loops = OpenMpRunner.Loops;
                var pool = FourSteps(make);
                OpenMpRunner.Loops.Should().Be(loops, "switched off, the thread pool runs the loops");
                for (int i = 0; i < omp.Length; i++) pool[i].Should().Equal(omp[i]);
            }
        } finally {
            CpuSwitches.OpenMpRunner = before;
        }
    }

    /// <summary>
    /// The kernels run managed code on libtorch's native OpenMP threads: garbage collections forced from another
    /// thread during the optimizer steps must neither hang nor change a bit.
    /// </summary>
    /// <remarks>
    /// Collections are confined to the steps (the collector holds a lock while it collects, the test thread takes it to
    /// switch them on and off): outside them, TorchSharp calls with temporary arguments can be hit by a collection
    /// themselves (seen here: an implicit <c>Scalar</c> passed to <c>add_</c> while setting gradients was freed during
    /// the native call), which is not what this test is about.
    /// </remarks>
    [Fact]
    public void GarbageCollectionsDuringTheStepsChangeNothing()
    {
        Assert.SkipWhen(torch.get_num_threads() < 2, "one torch thread: nothing runs on the OpenMP team");
        var gate = new object();
        bool collecting = false;
        int stop = 0;
        long collections = 0;
        double[][] Run()
        {
            var w = Fixtures.MakeParameters(new[] { new long[] { 200_003 }, new long[] { 70_001 }, new long[] { 5 } }, ScalarType.Float32);
            using var opt = Makers[1](w);
            for (int step = 0; step < 4; step++) {
                Fixtures.SetGradients(w, step);
                lock (gate) collecting = true;
                opt.step();
                lock (gate) collecting = false;
            }
            return Fixtures.Snapshot(w);
        }
        var quiet = Run();
        var collector = new System.Threading.Thread(() => {
            while (System.Threading.Volatile.Read(ref stop) == 0) {
                lock (gate) {
                    if (collecting) {
                        GC.Collect(2, GCCollectionMode.Forced, blocking: true);
                        collections++;
                    }
                }
                System.Threading.Thread.Sleep(0);
            }
        });
        collector.Start();
        try {
            for (int k = 0; k < 20; k++) {
                var busy = Run();
                for (int i = 0; i < quiet.Length; i++) busy[i].Should().Equal(quiet[i], $"repetition {k}");
            }
        } finally {
            System.Threading.Volatile.Write(ref stop, 1);
            collector.Join();
        }
        collections.Should().BeGreaterThan(0);
    }

    [Fact]
    public void AnExceptionInAnItemReachesTheCallerAndStopsTheOthers()
    {
        Assert.SkipUnless(OperatingSystem.IsLinux() && CpuSwitches.OpenMpRunner, "libtorch's OpenMP team is used on Linux only, unless ADAGRAFT_CPU_PARALLEL=dotnet");
        int ran = 0;
        var act = () => OpenMpRunner.TryRun(1000, 2, j => {
            System.Threading.Interlocked.Increment(ref ran);
            if (j == 3) throw new InvalidOperationException("item 3");
            System.Threading.Thread.Sleep(1);
        });
        act.Should().Throw<InvalidOperationException>().WithMessage("item 3");
        ran.Should().BeLessThan(1000, "the other threads stop claiming items");
        OpenMpRunner.TryRun(4, 2, _ => { }).Should().BeTrue("the team is usable after an exception");
    }
}
