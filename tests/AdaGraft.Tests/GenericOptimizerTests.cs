using AdaGraft.Rules;
using static AdaGraft.Tests.Support.TestTensors;

namespace AdaGraft.Tests;

/// <summary>
/// Properties every configuration of <see cref="OptimizerTable"/> must have as a TorchSharp optimizer: state-dict round
/// trips, closures, LR schedulers, device moves, zero_grad, missing gradients and disposal; and, for Algorithm 1's
/// configurations, cycled momentum and groups built by the constructor.
/// </summary>
public class GenericOptimizerTests
{
    /// <summary>Every allocated state slot of every tensor (for Algorithm 1: first, second and max second moment).</summary>
    private static List<Tensor> Slots(optim.Optimizer opt, IEnumerable<Parameter> ps) =>
        ps.Select(p => OptimizerTable.StateOf(opt, p))
            .SelectMany(s => Enumerable.Range(0, s.SlotNames.Length).Select(s.GetSlot))
            .Where(t => t is not null)
            .Select(t => t!)
            .ToList();

    private static long StepOf(optim.Optimizer opt, Parameter p) => OptimizerTable.StateOf(opt, p).Step;

    // ---------------- State dict ----------------

    [Theory]
    [MemberData(nameof(OptimizerTable.Names), MemberType = typeof(OptimizerTable))]
    public void StateDictRoundTripThroughAStreamContinuesBitIdentically(string name)
    {
        using var opt = Fixtures.Trained(p => OptimizerTable.Make(name, p), 5, out var a);

        byte[] bytes;
        using (var stream = new MemoryStream()) {
            using (var writer = new BinaryWriter(stream, System.Text.Encoding.UTF8, leaveOpen: true)) ((IOptimizerCheckpoint)opt).SaveCheckpoint(writer);
            bytes = stream.ToArray();
        }

        var b = Fixtures.Clone(a);
        using var restored = OptimizerTable.Make(name, b);
        // A different learning rate, so that a load that forgets the options is noticed.
        foreach (var g in restored.ParamGroups) g.LearningRate *= 3;
        using (var stream = new MemoryStream(bytes))
        using (var reader = new BinaryReader(stream)) {
            ((IOptimizerCheckpoint)restored).StageCheckpoint(reader)();
            stream.Position.Should().Be(bytes.Length, "the whole state is read");
        }
        restored.ParamGroups.Select(g => g.LearningRate).Should().Equal(opt.ParamGroups.Select(g => g.LearningRate));
        foreach (var p in b) StepOf(restored, p).Should().Be(5);

        Fixtures.Run(opt, a, 5, 5);
        Fixtures.Run(restored, b, 5, 5);
        ShouldBeBitIdentical(Fixtures.Snapshot(b), Fixtures.Snapshot(a), $"({name}: restored vs. uninterrupted)");
        foreach (var p in b) StepOf(restored, p).Should().Be(10);
    }

    [Theory]
    [MemberData(nameof(OptimizerTable.Names), MemberType = typeof(OptimizerTable))]
    public void StateDictRoundTripThroughAFileContinuesBitIdentically(string name)
    {
        var dir = Directory.CreateTempSubdirectory("adagraft-tests-");
        try {
            string path = Path.Combine(dir.FullName, "optimizer.bin");
            using var opt = Fixtures.Trained(p => OptimizerTable.Make(name, p), 5, out var a);
            ((dynamic)opt).save_state_dict(path);
            Directory.GetFiles(dir.FullName).Should().ContainSingle("the atomic save leaves no temporary file behind");

            var b = Fixtures.Clone(a);
            using var restored = OptimizerTable.Make(name, b);
            foreach (var g in restored.ParamGroups) g.LearningRate *= 3;
            ((dynamic)restored).load_state_dict(path);
            foreach (var p in b) StepOf(restored, p).Should().Be(5);

            Fixtures.Run(opt, a, 5, 5);
            Fixtures.Run(restored, b, 5, 5);
            ShouldBeBitIdentical(Fixtures.Snapshot(b), Fixtures.Snapshot(a), $"({name}: restored from a file vs. uninterrupted)");
        } finally {
            dir.Delete(recursive: true);
        }
    }

    // ---------------- Closures ----------------

    [Theory]
    [MemberData(nameof(OptimizerTable.Names), MemberType = typeof(OptimizerTable))]
    public void StepWithClosureCallsItOnceReturnsItsLossAndEqualsAStepWithTheSameGradient(string name)
    {
        var a = Fixtures.MakeParameters(Fixtures.Shapes);
        var b = Fixtures.Clone(a);
        using var gen = new Generator(11);
        var c = a.Select(p => torch.randn(p.shape, ScalarType.Float64, generator: gen)).ToList();
        using var withClosure = OptimizerTable.Make(name, a);
        using var byHand = OptimizerTable.Make(name, b);

        for (int step = 0; step < 3; step++) {
            int calls = 0;
            Tensor? returned = null;
            Tensor Closure()
            {
                calls++;
                withClosure.zero_grad();
                // loss = Σ_i (p_i·c_i).sum(), so ∂loss/∂p_i = c_i exactly.
                var loss = (a[0] * c[0]).sum();
                for (int i = 1; i < a.Count; i++) loss = loss + (a[i] * c[i]).sum();
                loss.backward();
                returned = loss;
                return loss;
            }

            double expectedLoss = a.Zip(c, (p, ci) => Values(p).Zip(Values(ci), (x, y) => x * y).Sum()).Sum();
            var result = withClosure.step(Closure);

            calls.Should().Be(1, "step(closure) evaluates the closure exactly once");
            ReferenceEquals(result, returned).Should().BeTrue("step(closure) returns the closure's own tensor");
            result.item<double>().Should().BeApproximately(expectedLoss, 1e-12 * Math.Max(1, Math.Abs(expectedLoss)));

            for (int i = 0; i < b.Count; i++) b[i].grad = c[i].clone();
            byHand.step();
            ShouldBeBitIdentical(Fixtures.Snapshot(a), Fixtures.Snapshot(b), $"({name}, step {step + 1}: closure vs. gradient set by hand)");
        }
    }

    // ---------------- LR schedulers ----------------

    [Theory]
    [MemberData(nameof(OptimizerTable.Names), MemberType = typeof(OptimizerTable))]
    public void StepLrGivesTheSameTrajectoryAsSettingTheLearningRateByHand(string name)
    {
        var a = Fixtures.MakeParameters(Fixtures.Shapes);
        var b = Fixtures.Clone(a);
        var constant = Fixtures.Clone(a);
        using var scheduled = OptimizerTable.Make(name, a);
        using var byHand = OptimizerTable.Make(name, b);
        using var unscheduled = OptimizerTable.Make(name, constant);
        // Every group's own initial rate (an optimizer that builds its own groups, e.g. Muon's and AdamW's, has several).
        var lr0 = scheduled.ParamGroups.Select(g => g.LearningRate).ToArray();
        var scheduler = optim.lr_scheduler.StepLR(scheduled, step_size: 3, gamma: 0.5);

        for (int t = 0; t < 10; t++) {
            int k = 0;
            foreach (var g in byHand.ParamGroups) g.LearningRate = lr0[k++] * Math.Pow(0.5, t / 3);
            Fixtures.StepAll(t, (a, scheduled), (b, byHand), (constant, unscheduled));
            scheduler.step();
        }

        scheduled.ParamGroups.Select(g => g.LearningRate).Should().Equal(lr0.Select(r => r / 8), "three halvings after 10 epochs of StepLR(3, 0.5)");
        ShouldBeBitIdentical(Fixtures.Snapshot(a), Fixtures.Snapshot(b), $"({name}: StepLR vs. the same schedule by hand)");
        Fixtures.MaxRelativeDifference(a, constant).Should().BeGreaterThan(1e-6, "the schedule must have changed the steps");
    }

    [Theory]
    [MemberData(nameof(OptimizerTable.GenericNamesWithMomentum), MemberType = typeof(OptimizerTable))]
    public void OneCycleLrWithCycleMomentumChangesTheGroupsBeta1AndTheOptimizerUsesIt(string name)
    {
        var a = Fixtures.MakeParameters(Fixtures.Shapes);
        var b = Fixtures.Clone(a);
        using var cycled = OptimizerTable.CreateGeneric(name, a);
        using var notCycled = OptimizerTable.CreateGeneric(name, b);
        var groupA = (GenericSecondMomentOptimizer.ParamGroup)cycled.Groups.Single();
        var groupB = (GenericSecondMomentOptimizer.ParamGroup)notCycled.Groups.Single();
        double beta1 = groupA.Momentum, beta2 = groupA.Options.Beta2!.Value;
        // total_steps exceeds the 10 steps taken: at last_epoch == total_steps TorchSharp's OneCycleLR falls off its
        // last phase and sets lr and β1 to 0, which is not what this test is about.
        var schedulerA = optim.lr_scheduler.OneCycleLR(cycled, max_lr: 0.01, total_steps: 12, cycle_momentum: true);
        var schedulerB = optim.lr_scheduler.OneCycleLR(notCycled, max_lr: 0.01, total_steps: 12, cycle_momentum: false);

        var momenta = new List<double>();
        for (int t = 0; t < 10; t++) {
            momenta.Add(groupA.Momentum);
            groupA.LearningRate.Should().Be(groupB.LearningRate, "both follow the same LR schedule");
            Fixtures.StepAll(t, (a, cycled), (b, notCycled));
            schedulerA.step();
            schedulerB.step();
        }

        momenta.Distinct().Should().HaveCountGreaterThan(1, "OneCycleLR cycles β1");
        momenta.Should().OnlyContain(m => m >= 0.85 - 1e-12 && m <= 0.95 + 1e-12);
        momenta.Should().Contain(m => m != beta1);
        groupA.Options.Beta2.Should().Be(beta2, "cycling momentum keeps β2");
        groupB.Momentum.Should().Be(beta1, "without cycle_momentum β1 is untouched");
        Fixtures.Snapshot(a).Should().OnlyContain(x => x.All(double.IsFinite));
        Fixtures.MaxRelativeDifference(a, b).Should().BeGreaterThan(1e-9, "the step must use the cycled β1");
    }

    // ---------------- Device moves ----------------

    [Theory]
    [MemberData(nameof(OptimizerTable.Names), MemberType = typeof(OptimizerTable))]
    public void ToDeviceKeepsTheTrajectory(string name)
    {
        var a = Fixtures.MakeParameters(Fixtures.Shapes);
        var b = Fixtures.Clone(a);
        using var moved = OptimizerTable.Make(name, a);
        using var stayed = OptimizerTable.Make(name, b);
        Fixtures.Run(moved, a, 0, 3);
        Fixtures.Run(stayed, b, 0, 3);
        ((dynamic)moved).to(torch.CPU);
        Slots(moved, a).All(t => t.device_type == DeviceType.CPU).Should().BeTrue("the state is on the CPU");
        Fixtures.Run(moved, a, 3, 3);
        Fixtures.Run(stayed, b, 3, 3);
        ShouldBeBitIdentical(Fixtures.Snapshot(a), Fixtures.Snapshot(b), $"({name}: after to(CPU))");
    }

    // ---------------- Parameter groups ----------------

    [Theory]
    [MemberData(nameof(OptimizerTable.GenericNames), MemberType = typeof(OptimizerTable))]
    public void TwoParameterGroupsEqualTwoSeparateOptimizers(string name)
    {
        var factory = OptimizerTable.GenericFactory(name);
        var all = Fixtures.MakeParameters(Fixtures.Shapes);
        var separate = Fixtures.Clone(all);
        var defaults = DefaultsOf(factory);
        double lr2 = defaults.LearningRate!.Value * 2.5;

        using var grouped = new GenericSecondMomentOptimizer(
            new[] {
                new GenericSecondMomentOptimizer.ParamGroup(all.Take(2)),
                new GenericSecondMomentOptimizer.ParamGroup(all.Skip(2), new SecondMomentOptions { LearningRate = lr2 }),
            },
            defaults);
        using var first = new GenericSecondMomentOptimizer(separate.Take(2).ToList(), DefaultsOf(factory));
        var secondOptions = DefaultsOf(factory);
        secondOptions.LearningRate = lr2;
        using var second = new GenericSecondMomentOptimizer(separate.Skip(2).ToList(), secondOptions);

        grouped.ParamGroups.Select(g => g.LearningRate).Should().Equal(defaults.LearningRate!.Value, lr2);
        for (int s = 0; s < 10; s++) {
            Fixtures.StepAll(s, new[] { all, separate }, grouped, first, second);
        }
        ShouldBeBitIdentical(Fixtures.Snapshot(all), Fixtures.Snapshot(separate), $"({name}: two groups vs. two optimizers)");
    }

    // ---------------- zero_grad and missing gradients ----------------

    [Theory]
    [MemberData(nameof(OptimizerTable.Names), MemberType = typeof(OptimizerTable))]
    public void ZeroGradSetsEveryGradientToZero(string name)
    {
        var ps = Fixtures.MakeParameters(Fixtures.Shapes);
        using var opt = OptimizerTable.Make(name, ps);
        Fixtures.SetGradients(ps, 0);
        ps.Should().OnlyContain(p => Values(p.grad!).Any(x => x != 0), "the fixture's gradients are not zero");
        opt.zero_grad();
        foreach (var p in ps) {
            var grad = p.grad;
            grad.Should().NotBeNull();
            Values(grad!).Should().OnlyContain(x => x == 0);
        }
    }

    [Theory]
    [MemberData(nameof(OptimizerTable.Names), MemberType = typeof(OptimizerTable))]
    public void ParameterWithoutGradientIsSkipped(string name)
    {
        var ps = Fixtures.MakeParameters(Fixtures.Shapes);
        var before = Fixtures.Snapshot(ps);
        using var opt = OptimizerTable.Make(name, ps);
        for (int s = 0; s < 3; s++) {
            Fixtures.SetGradients(ps, s);
            ps[1].grad = null;
            ps[1].grad.Should().BeNull();
            opt.step();
        }
        var after = Fixtures.Snapshot(ps);
        after[1].Should().Equal(before[1], "a parameter without a gradient does not move");
        StepOf(opt, ps[1]).Should().Be(0);
        foreach (int i in new[] { 0, 2, 3 }) {
            StepOf(opt, ps[i]).Should().Be(3);
            after[i].Should().NotEqual(before[i]);
        }
    }

    // ---------------- Disposal ----------------

    [Theory]
    [MemberData(nameof(OptimizerTable.Names), MemberType = typeof(OptimizerTable))]
    public void DisposeFreesTheStateAndLaterStepsThrow(string name)
    {
        var ps = Fixtures.MakeParameters(Fixtures.Shapes);
        var opt = OptimizerTable.Make(name, ps);
        Fixtures.Run(opt, ps, 0, 2);
        var slots = Slots(opt, ps);
        slots.All(t => !t.IsInvalid).Should().BeTrue("the state is alive before Dispose");

        opt.Dispose();

        ((bool)((dynamic)opt).IsDisposed).Should().BeTrue();
        slots.All(t => t.IsInvalid).Should().BeTrue("Dispose frees every state tensor");
        Fixtures.SetGradients(ps, 2);
        opt.Invoking(o => o.step()).Should().Throw<ObjectDisposedException>();
        opt.Invoking(o => ((IOptimizerCheckpoint)o).SaveCheckpoint(new BinaryWriter(new MemoryStream()))).Should().Throw<ObjectDisposedException>();
        opt.Invoking(o => OptimizerTable.StateOf(o, ps[0])).Should().Throw<ObjectDisposedException>();
        opt.Invoking(o => o.Dispose()).Should().NotThrow("Dispose is idempotent");
    }
}
