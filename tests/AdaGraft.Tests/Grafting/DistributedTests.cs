using System.Security.Cryptography;
using System.Threading;
using AdaGraft.Rules;
using static TorchSharp.torch.optim;

namespace AdaGraft.Tests.Grafting;

/// <summary>
/// Beyond one machine (docs/distributed.md): data-parallel replicas take the same step whatever their thread count,
/// and a graft over sharded state with <see cref="GraftOptions.ReduceSquaredNorms"/> equals the unsharded graft.
/// </summary>
public sealed class DistributedTests
{
    // ---------------------------------------------------------------- data parallelism: replicas in child processes

    private static readonly long[] ReplicaSizes = { 200_003, 70_001, 4099, 9 };
    private const int ReplicaSteps = 4;

    private static readonly string[] ReplicaCases = { "adam", "graft-per-tensor", "graft-global", "graft-blackbox-builtins" };

    /// <summary>
    /// Child process: one data-parallel replica. Args: thread count, runner ("openmp" or "dotnet"). Each step's
    /// gradient is the all-reduced mean of two workers' local gradients (computed here, elementwise, in a fixed order:
    /// what an all-reduce hands every replica). Prints "case | fused steps | SHA-256 of the parameters' bytes" per case.
    /// </summary>
    [ChildScenario("dp-replica")]
    public static int RunReplica(string[] args)
    {
        int threads = int.Parse(args[0], System.Globalization.CultureInfo.InvariantCulture);
        if (args[1] == "dotnet") AppContext.SetSwitch(CpuSwitches.DisableOpenMpRunnerSwitch, true);
        torch.set_num_threads(threads);
        Console.WriteLine($"threads | {torch.get_num_threads()} | {(CpuSwitches.OpenMpRunner ? "openmp" : "dotnet")}");
        long loopsBefore = OpenMpRunner.Loops;
        foreach (var name in ReplicaCases) {
            var w = Fixtures.MakeParameters(ReplicaSizes.Select(n => new[] { n }).ToArray(), ScalarType.Float32);
            string initial = Hash(w);
            using var opt = MakeReplicaOptimizer(name, w);
            for (int step = 0; step < ReplicaSteps; step++) {
                AllReducedGradients(w, step);
                opt.step();
            }
            // Fused steps: the graft counts steps, the single optimizer tensors (four a step).
            long fused = opt is GraftOptimizer g ? g.FusedSteps : ((GenericSecondMomentOptimizer)opt).FusedTensorSteps / ReplicaSizes.Length;
            string final = Hash(w);
            Console.WriteLine($"{name} | {fused} | {(final == initial ? "unchanged" : final)}");
        }
        Console.WriteLine($"openmp loops | {OpenMpRunner.Loops - loopsBefore}");
        return 0;
    }

    private static Optimizer MakeReplicaOptimizer(string name, List<Parameter> w) => name switch {
        "adam" => GenericSecondMomentOptimizer.TorchAdam(w, lr: 1e-2),
        "graft-per-tensor" => new GraftOptimizer(GenericSecondMomentOptimizer.HeavyBall(w, 0.1), GenericSecondMomentOptimizer.TorchAdam(w, 1),
            new GraftOptions { OwnsChildren = true }),
        "graft-global" => new GraftOptimizer(GenericSecondMomentOptimizer.HeavyBall(w, 0.1), GenericSecondMomentOptimizer.TorchAdam(w, 1),
            new GraftOptions { Granularity = GraftGranularity.Global, OwnsChildren = true }),
        "graft-blackbox-builtins" => new GraftOptimizer(torch.optim.SGD(w, 0.1, momentum: 0.9), torch.optim.Adam(w, lr: 1),
            new GraftOptions { Granularity = GraftGranularity.Global, OwnsChildren = true }),
        _ => throw new ArgumentException(name, nameof(name)),
    };

    /// <summary>The mean of two workers' local gradients (seeded noise + 0.1·w each), summed in worker order.</summary>
    private static void AllReducedGradients(IList<Parameter> ps, int step)
    {
        using var scope = torch.NewDisposeScope();
        using var gen0 = new Generator((ulong)(1_000 + step));
        using var gen1 = new Generator((ulong)(2_000 + step));
        foreach (var p in ps) {
            var local0 = torch.randn(p.shape, p.dtype, generator: gen0).add_(p.detach(), 0.1);
            var local1 = torch.randn(p.shape, p.dtype, generator: gen1).add_(p.detach(), 0.1);
            p.grad = local0.add_(local1).mul_(0.5).DetachFromDisposeScope();
        }
    }

    private static string Hash(IEnumerable<Parameter> ps)
    {
        using var sha = SHA256.Create();
        foreach (var p in ps) {
            var bytes = p.detach().contiguous().bytes.ToArray();
            sha.TransformBlock(bytes, 0, bytes.Length, null, 0);
        }
        sha.TransformFinalBlock(Array.Empty<byte>(), 0, 0);
        return Convert.ToHexString(sha.Hash!);
    }

    /// <summary>
    /// Two (three) replicas in their own processes, on 1 and 2 threads and on libtorch's OpenMP team or the .NET
    /// thread pool, given the same all-reduced gradients, end with bit-identical parameters: the fused kernels sum
    /// norms in a fixed order, whatever runs them.
    /// </summary>
    [Fact]
    public void ReplicasOnDifferentThreadCountsTakeBitIdenticalSteps()
    {
        var runs = new[] { ("1", "openmp"), ("2", "openmp"), ("2", "dotnet") }
            .Select(a => ChildProcess.Run("dp-replica", TimeSpan.FromMinutes(3), a.Item1, a.Item2)).ToArray();
        var tables = new List<Dictionary<string, string[]>>();
        foreach (var run in runs) {
            run.ExitCode.Should().Be(0, run.ToString());
            tables.Add(run.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries)
                .Select(l => l.Split(" | ")).ToDictionary(p => p[0], p => p[1..]));
        }
        tables[0]["threads"].Should().Equal("1", "openmp");
        tables[1]["threads"].Should().Equal("2", "openmp");
        tables[2]["threads"].Should().Equal("2", "dotnet");
        long.Parse(tables[1]["openmp loops"][0], System.Globalization.CultureInfo.InvariantCulture)
            .Should().BePositive("the two-thread replica must really run parallel loops on the OpenMP team");
        foreach (var name in ReplicaCases) {
            tables[0][name][0].Should().Be(ReplicaSteps.ToString(System.Globalization.CultureInfo.InvariantCulture), $"{name} must take the fused path");
            tables[0][name][1].Should().NotBe("unchanged", $"{name} must move the parameters");
            for (int r = 1; r < tables.Count; r++)
                tables[r][name].Should().Equal(tables[0][name], $"{name}: replica {r} must end with the same bits as replica 0");
        }
    }

    // ---------------------------------------------------------------- sharded state: two shards in one process

    /// <summary>Logical tensors; shard 0 owns the first <see cref="Split"/> elements of each, shard 1 the rest.</summary>
    private static readonly long[] Logical = { 70_001, 300, 17, 40 };

    private static readonly long[] Split = { 30_000, 299, 0, 40 };

    public enum ShardPath { FusedClosedForm, EagerClosedForm, FusedBlackBoxBuiltins, EagerBlackBoxBuiltins }

    public static TheoryData<GraftGranularity, ShardPath> ShardCases()
    {
        var data = new TheoryData<GraftGranularity, ShardPath>();
        foreach (var g in new[] { GraftGranularity.PerTensor, GraftGranularity.Global })
            foreach (var p in Enum.GetValues<ShardPath>()) data.Add(g, p);
        return data;
    }

    private static GraftOptimizer MakeGraft(List<Parameter> w, GraftGranularity granularity, ShardPath path, Action<Tensor>? reduce)
    {
        bool builtins = path is ShardPath.FusedBlackBoxBuiltins or ShardPath.EagerBlackBoxBuiltins;
        bool fused = path is ShardPath.FusedClosedForm or ShardPath.FusedBlackBoxBuiltins;
        var options = new GraftOptions { Granularity = granularity, FusedCpuKernel = fused, OwnsChildren = true, ReduceSquaredNorms = reduce };
        return builtins
            ? new GraftOptimizer(torch.optim.SGD(w, 0.1, momentum: 0.9), torch.optim.Adam(w, lr: 1), options)
            : new GraftOptimizer(GenericSecondMomentOptimizer.HeavyBall(w, 0.1), GenericSecondMomentOptimizer.TorchAdam(w, 1), options);
    }

    /// <summary>Each logical tensor's gradient at <paramref name="step"/>: seeded noise + 0.1·w (w the whole tensor).</summary>
    private static Tensor[] LogicalGradients(IReadOnlyList<Tensor> whole, int step)
    {
        using var gen = new Generator((ulong)(77 + step));
        return whole.Select(w => torch.randn(w.shape, w.dtype, generator: gen).add_(w, 0.1)).ToArray();
    }

    /// <summary>
    /// Runs <paramref name="steps"/> steps of the unsharded graft and of two shards (each a graft over its pieces,
    /// stepping on its own thread, the squared norms summed by a simulated all-reduce), and returns the largest
    /// relative difference of the parameters and of the last step's global ratio, and the reference's ratios.
    /// </summary>
    private static (double parameters, double globalRatio, double perTensorRatio) CompareShardedToWhole(
        GraftGranularity granularity, ShardPath path, bool withHook, int steps = 6)
    {
        var whole = Fixtures.MakeParameters(Logical.Select(n => new[] { n }).ToArray());
        var pieces = new List<Parameter>[2];
        for (int s = 0; s < 2; s++) {
            pieces[s] = Logical.Select((n, i) => {
                long start = s == 0 ? 0 : Split[i], length = s == 0 ? Split[i] : n - Split[i];
                return new Parameter(whole[i].detach().narrow(0, start, length).clone());
            }).ToList();
        }
        using var allReduce = new SimulatedAllReduce(2);
        using var reference = MakeGraft(whole, granularity, path, reduce: null);
        using var shard0 = MakeGraft(pieces[0], granularity, path, withHook ? allReduce.For(0) : null);
        using var shard1 = MakeGraft(pieces[1], granularity, path, withHook ? allReduce.For(1) : null);
        for (int step = 0; step < steps; step++) {
            using var scope = torch.NewDisposeScope();
            var g = LogicalGradients(whole.Select(p => (Tensor)p.detach()).ToArray(), step);
            for (int i = 0; i < whole.Count; i++) whole[i].grad = g[i].clone().DetachFromDisposeScope();
            var gs = LogicalGradients(Enumerable.Range(0, Logical.Length)
                .Select(i => torch.cat(new Tensor[] { pieces[0][i].detach(), pieces[1][i].detach() }, 0)).ToArray(), step);
            for (int s = 0; s < 2; s++) {
                for (int i = 0; i < Logical.Length; i++) {
                    long start = s == 0 ? 0 : Split[i], length = s == 0 ? Split[i] : Logical[i] - Split[i];
                    pieces[s][i].grad = gs[i].narrow(0, start, length).clone().DetachFromDisposeScope();
                }
            }
            reference.step();
            Lockstep(() => shard0.step(), () => shard1.step());
        }
        if (withHook) allReduce.Calls.Should().Equal(steps, steps);
        double worst = 0;
        for (int i = 0; i < Logical.Length; i++) {
            using var joined = torch.cat(new Tensor[] { pieces[0][i].detach(), pieces[1][i].detach() }, 0);
            worst = Math.Max(worst, Fixtures.RelativeDifference(joined, whole[i].detach()));
        }
        double refGlobal = reference.LastNorms!.GlobalRatio.item<double>();
        double ratio = Math.Max(Rel(shard0.LastNorms!.GlobalRatio.item<double>(), refGlobal), Rel(shard1.LastNorms!.GlobalRatio.item<double>(), refGlobal));
        double perTensor = 0;
        for (int i = 0; i < Logical.Length; i++) {
            double r = reference.LastNorms.Ratio[i]!.item<double>();
            if (Split[i] > 0) perTensor = Math.Max(perTensor, Rel(shard0.LastNorms.Ratio[i]!.item<double>(), r));
            if (Split[i] < Logical[i]) perTensor = Math.Max(perTensor, Rel(shard1.LastNorms.Ratio[i]!.item<double>(), r));
        }
        if (path is ShardPath.FusedClosedForm or ShardPath.FusedBlackBoxBuiltins) {
            reference.FusedSteps.Should().Be(steps);
            shard0.FusedSteps.Should().Be(steps);
            shard1.FusedSteps.Should().Be(steps);
        }
        return (worst, ratio, perTensor);

        static double Rel(double a, double b) => Math.Abs(a - b) / Math.Max(Math.Abs(b), 1e-300);
    }

    /// <summary>
    /// Two shards, each owning a piece of every tensor (one piece empty, one whole), with the hook: the parameters,
    /// the global ratio and (per tensor) each tensor's ratio equal the unsharded graft's to round-off, on every path.
    /// </summary>
    [Theory]
    [MemberData(nameof(ShardCases))]
    public void TwoShardsWithTheReductionEqualTheUnshardedGraft(GraftGranularity granularity, ShardPath path)
    {
        var (parameters, globalRatio, perTensorRatio) = CompareShardedToWhole(granularity, path, withHook: true);
        parameters.Should().BeLessThan(1e-12);
        globalRatio.Should().BeLessThan(1e-12);
        if (granularity == GraftGranularity.PerTensor) perTensorRatio.Should().BeLessThan(1e-12);
    }

    /// <summary>The same shards without the hook graft each piece on its own: visibly not the unsharded graft.</summary>
    [Theory]
    [InlineData(GraftGranularity.PerTensor)]
    [InlineData(GraftGranularity.Global)]
    public void TwoShardsWithoutTheReductionDiffer(GraftGranularity granularity)
    {
        var (parameters, globalRatio, _) = CompareShardedToWhole(granularity, ShardPath.FusedClosedForm, withHook: false);
        parameters.Should().BeGreaterThan(1e-6);
        globalRatio.Should().BeGreaterThan(1e-3);
    }

    /// <summary>The hook gets the documented vector: [ΔM²ᵢ…, ΔD²ᵢ…, ΣΔM², ΣΔD²] per tensor, [ΣΔM², ΣΔD²] globally.</summary>
    [Theory]
    [InlineData(GraftGranularity.PerTensor, true)]
    [InlineData(GraftGranularity.PerTensor, false)]
    [InlineData(GraftGranularity.Global, true)]
    [InlineData(GraftGranularity.Global, false)]
    public void TheHookReceivesTheSquaredNormsInTheDocumentedLayout(GraftGranularity granularity, bool fused)
    {
        var w = Fixtures.MakeParameters(new[] { new long[] { 50 }, new long[] { 3, 4 }, new long[] { 9 } });
        var seen = new List<double[]>();
        using var graft = MakeGraft(w, granularity, fused ? ShardPath.FusedClosedForm : ShardPath.EagerClosedForm,
            t => {
                t.dtype.Should().Be(ScalarType.Float64);
                seen.Add(t.data<double>().ToArray());
            });
        Fixtures.SetGradients(w, 0, zeroAt: null);
        w[1].grad = null;   // no gradient: its entries are 0
        graft.step();
        seen.Should().HaveCount(1);
        var v = seen[0];
        var norms = graft.LastNorms!;
        double gm = norms.GlobalMagnitude.item<double>(), gd = norms.GlobalDirection.item<double>();
        if (granularity == GraftGranularity.Global) {
            v.Should().HaveCount(2);
        } else {
            v.Should().HaveCount(2 * w.Count + 2);
            foreach (int i in new[] { 0, 2 }) {
                v[i].Should().BeApproximately(Math.Pow(norms.Magnitude[i]!.item<double>(), 2), 1e-12 * v[i]);
                v[w.Count + i].Should().BeApproximately(Math.Pow(norms.Direction[i]!.item<double>(), 2), 1e-12 * v[w.Count + i]);
                v[i].Should().BePositive();
            }
            v[1].Should().Be(0);
            v[w.Count + 1].Should().Be(0);
        }
        v[^2].Should().BeApproximately(gm * gm, 1e-12 * gm * gm);
        v[^1].Should().BeApproximately(gd * gd, 1e-12 * gd * gd);
        v[^2].Should().BePositive();

        // A shard with no gradient at all still takes part in the collective.
        foreach (var p in w) p.grad = null;
        graft.step();
        seen.Should().HaveCount(2);
        seen[1].Should().OnlyContain(x => x == 0);
    }

    [Fact]
    public void AHookThatDoesNotReduceInPlaceRaises()
    {
        var w = Fixtures.MakeParameters(new[] { new long[] { 8 } });
        foreach (bool fused in new[] { true, false }) {
            using var graft = MakeGraft(w, GraftGranularity.PerTensor, fused ? ShardPath.FusedClosedForm : ShardPath.EagerClosedForm,
                t => {
                    using var other = torch.zeros(3, ScalarType.Float64, t.device);
                    t.set_(other);
                });
            Fixtures.SetGradients(w, 0);
            var act = () => graft.step();
            act.Should().Throw<InvalidOperationException>().WithMessage("*ReduceSquaredNorms*in place*");
        }
    }

    [Fact]
    public void TheHookIsRefusedWherePerShardDecisionsWouldDiffer()
    {
        var w = Fixtures.MakeParameters(new[] { new long[] { 8 } });
        var perBlock = () => MakeGraft(w, GraftGranularity.PerBlock, ShardPath.EagerClosedForm, _ => { });
        perBlock.Should().Throw<ArgumentException>().Where(e => e.ParamName == nameof(GraftOptions.ReduceSquaredNorms));
        using var graft = MakeGraft(w, GraftGranularity.PerTensor, ShardPath.EagerClosedForm, _ => { });
        var skip = () => graft.SkipNonFiniteSteps = true;
        skip.Should().Throw<NotSupportedException>().WithMessage("*ReduceSquaredNorms*");
    }

    /// <summary>Runs <paramref name="a"/> here and <paramref name="b"/> on a second thread, as two shards would run.</summary>
    private static void Lockstep(Action a, Action b)
    {
        Exception? other = null;
        var thread = new Thread(() => {
            try {
                b();
            } catch (Exception e) {
                other = e;
            }
        });
        thread.Start();
        a();
        thread.Join();
        if (other is not null) throw new InvalidOperationException("shard 1 failed", other);
    }

    /// <summary>An all-reduce (sum) between threads: every rank adds the ranks' tensors in rank order, so all get the same bits.</summary>
    private sealed class SimulatedAllReduce(int ranks) : IDisposable
    {
        private readonly Barrier _barrier = new(ranks);
        private readonly Tensor?[] _slots = new Tensor?[ranks];

        public int[] Calls { get; } = new int[ranks];

        public Action<Tensor> For(int rank) => t => {
            Calls[rank]++;
            _slots[rank] = t;
            Wait();
            using var sum = _slots[0]!.clone();
            for (int r = 1; r < _slots.Length; r++) sum.add_(_slots[r]!);
            Wait();
            t.copy_(sum);
        };

        public void Dispose() => _barrier.Dispose();

        private void Wait()
        {
            if (!_barrier.SignalAndWait(TimeSpan.FromSeconds(60)))
                throw new TimeoutException("A simulated shard never reached the all-reduce.");
        }
    }
}
