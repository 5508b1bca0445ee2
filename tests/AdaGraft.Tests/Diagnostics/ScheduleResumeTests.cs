using AdaGraft.Schedules;
using static TorchSharp.torch.optim;
using static TorchSharp.torch.optim.lr_scheduler;

namespace AdaGraft.Tests.Diagnostics;

/// <summary>
/// Save → load → continue gives the uninterrupted run's learning rates and bit-identical parameters, for StepLR,
/// OneCycleLR, LambdaLR and CorrectedScheduler, when the scheduler is rebuilt with <see cref="ScheduleResume.Rebuild"/>;
/// the PyTorch habit (<c>last_epoch</c>) decays twice.
/// </summary>
public class ScheduleResumeTests
{
    private const int Steps = 30;

    /// <summary>An optimizer and a scheduler as a training script builds them.</summary>
    public sealed record Setup(string Name, Func<IList<Parameter>, Optimizer> MakeOptimizer, Func<Optimizer, LRScheduler> MakeScheduler)
    {
        /// <inheritdoc />
        public override string ToString() => Name;
    }

    private static readonly Setup[] Setups = {
        new("StepLR on TorchAdam", ps => GenericSecondMomentOptimizer.TorchAdam(ps, lr: 0.05), o => StepLR(o, step_size: 5, gamma: 0.5)),
        new("OneCycleLR on the graft HeavyBall#Adam", ps => new GraftOptimizer(GenericSecondMomentOptimizer.TorchAdam(ps, lr: 0.05), GenericSecondMomentOptimizer.Adam(ps, 1),
            new GraftOptions { OwnsChildren = true }), o => OneCycleLR(o, max_lr: 0.1, total_steps: Steps)),
        new("LambdaLR on TorchSgd with momentum", ps => GenericSecondMomentOptimizer.TorchSgd(ps, learningRate: 0.05, momentum: 0.9), o => LambdaLR(o, e => 1.0 / (1 + 0.1 * e))),
        new("CorrectedScheduler over StepLR on the graft HeavyBall#AdaGrad", ps => new GraftOptimizer(GenericSecondMomentOptimizer.HeavyBall(ps, 0.05), GenericSecondMomentOptimizer.AdaGrad(ps, 1),
            new GraftOptions { Granularity = GraftGranularity.Global, OwnsChildren = true }),
            o => new CorrectedScheduler(o, new ExponentialCorrection(1.3, -0.02), StepLR(o, step_size: 4, gamma: 0.7))),
    };

    public static TheoryData<Setup, int> Cases()
    {
        var data = new TheoryData<Setup, int>();
        foreach (var s in Setups) {
            data.Add(s, 15);
            data.Add(s, 12);
        }
        return data;
    }

    /// <summary>A small linear model y = W·x + b on fixed data (float32), initialised from <paramref name="seed"/>.</summary>
    private sealed class Model : IDisposable
    {
        public readonly List<Parameter> Parameters;
        private readonly Tensor _x, _y;

        public Model(int seed)
        {
            var rng = new Random(seed);
            Tensor Random(params long[] shape) =>
                torch.tensor(Enumerable.Range(0, (int)shape.Aggregate(1L, (a, b) => a * b)).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray(), shape);
            Parameters = new List<Parameter> { new(Random(3, 4)), new(Random(3)) };
            var data = new Random(99);
            _x = torch.tensor(Enumerable.Range(0, 64).Select(_ => (float)(data.NextDouble() * 2 - 1)).ToArray(), new long[] { 16, 4 });
            _y = torch.tensor(Enumerable.Range(0, 48).Select(_ => (float)(data.NextDouble() * 2 - 1)).ToArray(), new long[] { 16, 3 });
        }

        public void Backward()
        {
            using var scope = torch.NewDisposeScope();
            var loss = (_x.mm(Parameters[0].t()) + Parameters[1] - _y).pow(2).mean();
            loss.backward();
        }

        public void Dispose()
        {
            foreach (var p in Parameters) p.Dispose();
            _x.Dispose();
            _y.Dispose();
        }
    }

    private static int[] Bits(Tensor t) => t.data<float>().ToArray().Select(BitConverter.SingleToInt32Bits).ToArray();

    private static double Lr(Optimizer o) => o.ParamGroups.First().LearningRate;

    /// <summary>Steps <paramref name="from"/> … <paramref name="to"/> (1-based), recording the rate each step used.</summary>
    private static void Train(Model model, Optimizer opt, LRScheduler scheduler, int from, int to, List<double> lrs)
    {
        for (int step = from; step <= to; step++) {
            lrs.Add(Lr(opt));
            opt.zero_grad();
            model.Backward();
            opt.step();
            scheduler.step();
        }
    }

    private static (List<double> lrs, Tensor[] parameters) Uninterrupted(Setup s)
    {
        using var model = new Model(1);
        var opt = s.MakeOptimizer(model.Parameters);
        var lrs = new List<double>();
        Train(model, opt, s.MakeScheduler(opt), 1, Steps, lrs);
        ((IDisposable)opt).Dispose();
        return (lrs, model.Parameters.Select(p => p.detach().clone()).ToArray());
    }

    /// <summary>Trains to <paramref name="k"/>, saves, builds everything anew (other initial weights), loads, resumes
    /// the scheduler with <paramref name="resume"/> and trains to the end.</summary>
    private static (List<double> lrs, Tensor[] parameters) Resumed(Setup s, int k, Func<Optimizer, LRScheduler> resume)
    {
        var lrs = new List<double>();
        byte[] checkpoint;
        Tensor[] saved;
        using (var model = new Model(1)) {
            var opt = s.MakeOptimizer(model.Parameters);
            Train(model, opt, s.MakeScheduler(opt), 1, k, lrs);
            using var ms = new MemoryStream();
            using (var w = new BinaryWriter(ms, System.Text.Encoding.UTF8, leaveOpen: true)) ((IOptimizerCheckpoint)opt).SaveCheckpoint(w);
            checkpoint = ms.ToArray();
            saved = model.Parameters.Select(p => p.detach().clone()).ToArray();
            ((IDisposable)opt).Dispose();
        }
        using var resumed = new Model(2);
        using (torch.no_grad()) {
            for (int i = 0; i < saved.Length; i++) resumed.Parameters[i].copy_(saved[i]);
        }
        var opt2 = s.MakeOptimizer(resumed.Parameters);
        using (var r = new BinaryReader(new MemoryStream(checkpoint))) ((IOptimizerCheckpoint)opt2).StageCheckpoint(r)();
        var scheduler = resume(opt2);
        Train(resumed, opt2, scheduler, k + 1, Steps, lrs);
        ((IDisposable)opt2).Dispose();
        foreach (var t in saved) t.Dispose();
        return (lrs, resumed.Parameters.Select(p => p.detach().clone()).ToArray());
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void RebuiltSchedulerGivesTheUninterruptedRatesAndBitIdenticalParameters(Setup s, int k)
    {
        var (lrs, parameters) = Uninterrupted(s);
        var (lrs2, parameters2) = Resumed(s, k, o => ScheduleResume.Rebuild(o, s.MakeScheduler, stepsTaken: k));
        lrs2.Should().Equal(lrs, "every step uses the uninterrupted run's learning rate, bit for bit");
        lrs.Distinct().Should().HaveCountGreaterThan(3, "the schedule really changes the rate");
        for (int i = 0; i < parameters.Length; i++)
            Bits(parameters2[i]).Should().Equal(Bits(parameters[i]), $"parameter {i} is bit-identical after {Steps} steps with a checkpoint at {k}");
    }

    [Fact]
    public void ThePyTorchHabitLastEpochDecaysTwiceWhereRebuildDoesNot()
    {
        var s = Setups[0];
        const int k = 15;
        var (lrs, parameters) = Uninterrupted(s);
        // The loaded rate has already decayed three times; StepLR(last_epoch: k − 1) steps to epoch k in its constructor
        // and multiplies it by γ once more.
        var (naive, naiveParameters) = Resumed(s, k, o => StepLR(o, step_size: 5, gamma: 0.5, last_epoch: k - 1));
        naive[k].Should().Be(lrs[k] * 0.5, "the rate decays twice at the resume");
        Bits(naiveParameters[0]).Should().NotEqual(Bits(parameters[0]));
    }

    [Fact]
    public void ReplayingTheWrongNumberOfStepsRaisesAndChangesNothing()
    {
        var s = Setups[1];
        using var model = new Model(1);
        var opt = s.MakeOptimizer(model.Parameters);
        Train(model, opt, s.MakeScheduler(opt), 1, 10, new List<double>());
        double lr = Lr(opt);
        var betas = ((IBetas)opt).Betas;
        FluentActions.Invoking(() => ScheduleResume.Rebuild(opt, s.MakeScheduler, stepsTaken: 9)).Should().Throw<InvalidDataException>()
            .WithMessage("*group 0*9 steps*scheduler.step()*");
        Lr(opt).Should().Be(lr);
        ((IBetas)opt).Betas.Should().Be(betas, "OneCycleLR's momentum is put back too");
        ScheduleResume.Rebuild(opt, s.MakeScheduler, stepsTaken: 10);
        Lr(opt).Should().Be(lr);
        FluentActions.Invoking(() => ScheduleResume.Rebuild(opt, s.MakeScheduler, stepsTaken: -1)).Should().Throw<ArgumentOutOfRangeException>().WithParameterName("stepsTaken");
        ((IDisposable)opt).Dispose();
    }
}
