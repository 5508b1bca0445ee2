using System.Collections.Concurrent;
using System.Threading.Tasks;
using AdaGraft.Rules;

namespace AdaGraft.Tests.Fused;

/// <summary>
/// The process-wide switches (<see cref="CpuSwitches"/>): fused kernels off sends every decision site to its eager
/// path; the OpenMP runner off sends the parallel loops to <c>Parallel.For</c>. These tests flip process-wide state and
/// restore it, in the collection that runs alone.
/// </summary>
[Collection(nameof(ProcessWideRunnerTests))]
public class CpuSwitchesTests
{
    private static readonly long[][] Shapes = { new long[] { 200_003 }, new long[] { 70_001 }, new long[] { 5 } };

    /// <summary>Every kind of fused decision site: a rule optimizer, a closed-form graft, a black-box graft (fused-capable children).</summary>
    private static (optim.Optimizer Opt, Func<long> FusedCount) Make(string kind, List<Parameter> w, bool option)
    {
        switch (kind) {
            case "rule": {
                    var adam = GenericSecondMomentOptimizer.TorchAdam(w, lr: 0.01);
                    adam.FusedCpuKernel = option;
                    return (adam, () => adam.FusedTensorSteps);
                }
            case "closed-form": {
                    var m = GenericSecondMomentOptimizer.HeavyBall(w, 0.01);
                    var d = GenericSecondMomentOptimizer.TorchAdam(w, lr: 1);
                    var graft = new GraftOptimizer(m, d, new GraftOptions { OwnsChildren = true, FusedCpuKernel = option });
                    return (graft, () => graft.FusedSteps + m.FusedTensorSteps + d.FusedTensorSteps);
                }
            case "black-box": {
                    var m = GenericSecondMomentOptimizer.HeavyBall(w, 0.01);
                    var d = GenericSecondMomentOptimizer.TorchAdam(w, lr: 1);
                    m.FusedCpuKernel = option;
                    d.FusedCpuKernel = option;
                    var graft = new GraftOptimizer(m, d, new GraftOptions { OwnsChildren = true, Path = GraftPath.BlackBox, FusedCpuKernel = option });
                    return (graft, () => graft.FusedSteps + m.FusedTensorSteps + d.FusedTensorSteps);
                }
            default:
                throw new ArgumentOutOfRangeException(nameof(kind), kind, null);
        }
    }

    private static (double[][] Values, long Fused) FourSteps(string kind, bool option)
    {
        var w = Fixtures.MakeParameters(Shapes, ScalarType.Float32);
        var (opt, fusedCount) = Make(kind, w, option);
        using (opt) {
            Fixtures.Run(opt, w, 0, 4);
            return (Fixtures.Snapshot(w), fusedCount());
        }
    }

    [Theory]
    [InlineData("rule")]
    [InlineData("closed-form")]
    [InlineData("black-box")]
    public void FusedKernelsOffSendsEveryDecisionSiteToTheEagerPath(string kind)
    {
        bool before = CpuSwitches.FusedKernels;
        try {
            CpuSwitches.FusedKernels = true;
            FourSteps(kind, option: true).Fused.Should().BeGreaterThan(0, "with the switch on, these tensors take the fused path");
            var eagerByOption = FourSteps(kind, option: false);
            eagerByOption.Fused.Should().Be(0);

            CpuSwitches.FusedKernels = false;
            var eagerBySwitch = FourSteps(kind, option: true);
            eagerBySwitch.Fused.Should().Be(0, "the process-wide switch overrides the instance's FusedCpuKernel = true");
            for (int i = 0; i < Shapes.Length; i++)
                eagerBySwitch.Values[i].Should().Equal(eagerByOption.Values[i], "both run the same eager operations");
        } finally {
            CpuSwitches.FusedKernels = before;
        }
    }

    /// <summary>
    /// <c>Parallel.For</c> runs every item inside one of its own tasks (the calling thread's share too); the OpenMP
    /// team's threads run outside any task and the calling thread keeps its own.
    /// </summary>
    [Fact]
    public void RunnerOffRunsTheLoopsOnParallelForAndNotOnTheTeam()
    {
        Assert.SkipWhen(torch.get_num_threads() < 2 || Environment.ProcessorCount < 2, "one thread: the loops run inline on either runner");
        bool before = CpuSwitches.OpenMpRunner;
        const int Items = 64;
        (long Loops, List<int?> Tasks, int? Caller) Loop()
        {
            var tasks = new ConcurrentBag<int?>();
            long loops = OpenMpRunner.Loops;
            int? caller = Task.CurrentId;
            FusedCpu.Run(Items, 1 << 20, _ => tasks.Add(Task.CurrentId));
            return (OpenMpRunner.Loops - loops, tasks.ToList(), caller);
        }
        try {
            CpuSwitches.OpenMpRunner = false;
            var pool = Loop();
            pool.Loops.Should().Be(0, "switched off, no loop runs on the OpenMP team");
            pool.Tasks.Should().HaveCount(Items);
            pool.Tasks.Should().OnlyContain(id => id != null && id != pool.Caller, "every item ran inside a Parallel.For task");

            CpuSwitches.OpenMpRunner = true;
            if (OperatingSystem.IsLinux()) {
                OpenMpRunner.IsAvailable.Should().BeTrue(OpenMpRunner.Reason);
                var team = Loop();
                team.Loops.Should().Be(1);
                team.Tasks.Should().HaveCount(Items);
                team.Tasks.Should().OnlyContain(id => id == null || id == team.Caller, "no item ran inside a Parallel.For task");
            }
        } finally {
            CpuSwitches.OpenMpRunner = before;
        }
    }

    [Theory]
    [InlineData(null, null, false)]
    [InlineData(null, "0", true)]
    [InlineData(null, "OFF", true)]
    [InlineData(null, " false ", true)]
    [InlineData(null, "1", false)]
    [InlineData(null, "", false)]
    [InlineData(true, null, true)]
    [InlineData(true, "1", true)]
    [InlineData(false, "0", false)]
    public void AnAppContextSwitchThatIsSetWinsOverTheEnvironment(bool? appContext, string? environment, bool disabled) =>
        CpuSwitches.Disabled(appContext, environment, "0", "false", "off").Should().Be(disabled);

    [Theory]
    [InlineData("dotnet", true)]
    [InlineData("DotNet", true)]
    [InlineData("openmp", false)]
    public void TheRunnerVariableTakesDotnet(string environment, bool disabled) =>
        CpuSwitches.Disabled(null, environment, "dotnet").Should().Be(disabled);
}
