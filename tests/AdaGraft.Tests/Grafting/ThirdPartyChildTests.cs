using AdaGraft.Rules;

namespace AdaGraft.Tests.Grafting;

/// <summary>
/// A child the library does not know: grafting names no concrete optimizer type. A rule written outside the library on
/// the public contracts (<see cref="IRule{TOptions, TState}"/>, <see cref="RuleOptimizer{TOptions, TState, TRule}"/>,
/// <see cref="RuleState"/> slots) gets the closed form, the guarded step and checkpoints; a bare
/// <see cref="IProposingOptimizer"/> gets the closed form, and a clear error for the guarded step. (README's "Your own
/// optimizer" compiles the same rule against the package alone, so only public members are used.)
/// </summary>
public class ThirdPartyChildTests
{
    /// <summary>Signum (Bernstein et al., 2018): m ← β·m + (1−β)·g, w ← w − η·sign(m).</summary>
    public sealed class SignumOptions : RuleOptions
    {
        public double? Beta { get; set; }

        public override void Validate()
        {
            ValidateLearningRate();
            RequireInRange(Beta, 0, 1, hiOpen: true, "beta", "use e.g. 0.9.");
        }
    }

    public sealed class SignumState(Parameter parameter) : RuleState(parameter, new[] { "momentum" }, 1)
    {
        public Tensor Momentum => Slot(0);

        public Tensor Sign => Scratch(0);
    }

    public sealed class SignumRule : IRule<SignumOptions, SignumState>
    {
        public static SignumState NewState(Parameter parameter) => new(parameter);

        public static Proposal Propose(SignumOptions o, SignumState state, Tensor param, Tensor grad)
        {
            state.Step++;
            double beta = o.Beta!.Value;
            var m = state.Momentum.mul_(beta).add_(grad, 1 - beta);
            return new Proposal(state.Sign.copy_(m).sign_(), -o.LearningRate!.Value);
        }
    }

    public sealed class Signum(IEnumerable<Parameter> parameters, double lr = 1e-3, double beta = 0.9)
        : RuleOptimizer<SignumOptions, SignumState, SignumRule>(
            new[] { new TorchSharp.Modules.ParamGroup<SignumOptions>(parameters, new SignumOptions()) },
            new SignumOptions { LearningRate = lr, Beta = beta });

    /// <summary>An optimizer of another library that only proposes steps (w ← w − η·g), built on TorchSharp's helper alone.</summary>
    private sealed class ProposingSgd(List<Parameter> ps, double lr) : ForeignOptimizer(ps, optim.SGD(ps, lr)), IProposingOptimizer
    {
        public override Tensor step(Func<Tensor>? closure = null) => Inner.step(closure);

        public Proposal Propose(Parameter parameter, Tensor grad) => new(grad, -lr);

        public void ValidateForStep() { }
    }

    private static void SetGradients(IList<Parameter> ps, int step) => Fixtures.SetGradients(ps, step);

    private static List<Tensor> Copy(IList<Parameter> ps) => ps.Select(p => p.detach().clone()).ToList();

    [Fact]
    public void SignumStepsAsItsRuleSays()
    {
        var w = Fixtures.MakeParameters(Fixtures.Shapes);
        var start = Copy(w);
        using var opt = new Signum(w, lr: 0.01, beta: 0.5);
        var m = w.Select(p => torch.zeros_like(p)).ToList();
        var expected = start.Select(t => t.clone()).ToList();
        for (int step = 0; step < 3; step++) {
            SetGradients(w, step);
            for (int i = 0; i < w.Count; i++) {
                m[i] = 0.5 * m[i] + 0.5 * w[i].grad!;
                expected[i] = expected[i] - 0.01 * m[i].sign();
            }
            opt.step();
        }
        for (int i = 0; i < w.Count; i++) w[i].detach().allclose(expected[i], rtol: 0, atol: 1e-15).Should().BeTrue($"parameter {i}");
    }

    [Theory]
    [InlineData(GraftGranularity.PerTensor)]
    [InlineData(GraftGranularity.Global)]
    public void AdamSignumGraftTakesAdamsNormsAndSignumsDirections(GraftGranularity granularity)
    {
        var w = Fixtures.MakeParameters(Fixtures.Shapes);
        var adamAlone = Fixtures.Clone(w);
        var signumAlone = Fixtures.Clone(w);
        using var graft = new GraftOptimizer(GenericSecondMomentOptimizer.TorchAdam(w, lr: 0.01), new Signum(w, lr: 1, beta: 0.5),
            new GraftOptions { Granularity = granularity, OwnsChildren = true });
        using var adam = GenericSecondMomentOptimizer.TorchAdam(adamAlone, lr: 0.01);
        using var signum = new Signum(signumAlone, lr: 1, beta: 0.5);
        graft.IsClosedForm.Should().BeTrue("a rule-based child proposes its steps");
        for (int step = 0; step < 4; step++) {
            var before = Copy(w);
            // The same parameters and gradients for the three: the references restart from the graft's parameters.
            for (int i = 0; i < w.Count; i++) {
                using (torch.no_grad()) {
                    adamAlone[i].copy_(w[i]);
                    signumAlone[i].copy_(w[i]);
                }
            }
            SetGradients(w, step);
            SetGradients(adamAlone, step);
            SetGradients(signumAlone, step);
            graft.step();
            adam.step();
            signum.step();
            var dm = adamAlone.Select((p, i) => p.detach() - before[i]).ToList();
            var dd = signumAlone.Select((p, i) => p.detach() - before[i]).ToList();
            var applied = w.Select((p, i) => p.detach() - before[i]).ToList();
            if (granularity == GraftGranularity.PerTensor) {
                for (int i = 0; i < w.Count; i++) {
                    double dn = dd[i].norm().item<double>();
                    var want = dn == 0 ? torch.zeros_like(dd[i]) : dd[i] * (dm[i].norm().item<double>() / dn);
                    applied[i].allclose(want, rtol: 1e-9, atol: 1e-14).Should().BeTrue($"step {step}, parameter {i}");
                }
            } else {
                double gm = Math.Sqrt(dm.Sum(t => t.square().sum().item<double>()));
                double gd = Math.Sqrt(dd.Sum(t => t.square().sum().item<double>()));
                for (int i = 0; i < w.Count; i++) applied[i].allclose(dd[i] * (gm / gd), rtol: 1e-9, atol: 1e-14).Should().BeTrue($"step {step}, parameter {i}");
            }
        }
    }

    [Fact]
    public void SignumGraftedOntoItselfIsSignum()
    {
        var w = Fixtures.MakeParameters(Fixtures.Shapes);
        var alone = Fixtures.Clone(w);
        using var graft = new GraftOptimizer(new Signum(w, 0.01, 0.5), new Signum(w, 1, 0.5), new GraftOptions { OwnsChildren = true });
        using var signum = new Signum(alone, 0.01, 0.5);
        for (int step = 0; step < 5; step++) {
            SetGradients(w, step);
            SetGradients(alone, step);
            graft.step();
            signum.step();
        }
        Fixtures.MaxRelativeDifference(w, alone).Should().BeLessThanOrEqualTo(1e-12);
    }

    [Fact]
    public void SignumChildSkipsNonFiniteStepsAndRoundTripsCheckpoints()
    {
        var w = Fixtures.MakeParameters(Fixtures.Shapes);
        var reference = Fixtures.Clone(w);
        using var guarded = new GraftOptimizer(GenericSecondMomentOptimizer.HeavyBall(w, 0.02), new Signum(w, 1, 0.5), new GraftOptions { OwnsChildren = true });
        using var plain = new GraftOptimizer(GenericSecondMomentOptimizer.HeavyBall(reference, 0.02), new Signum(reference, 1, 0.5), new GraftOptions { OwnsChildren = true });
        guarded.SkipNonFiniteSteps = true;
        for (int step = 0; step < 6; step++) {
            SetGradients(w, step);
            if (step == 2) {
                using (torch.no_grad()) w[1].grad!.view(-1)[0] = double.NaN;
                guarded.step();
                continue;
            }
            SetGradients(reference, step);
            guarded.step();
            plain.step();
        }
        guarded.SkippedSteps.Should().Be(1);
        TestTensors.ShouldBeBitIdentical(Fixtures.Snapshot(w), Fixtures.Snapshot(reference), "the skipped step left no trace");

        var path = Path.Combine(Path.GetTempPath(), $"adagraft-signum-{Guid.NewGuid():N}.bin");
        try {
            plain.save_state_dict(path);
            var resumed = Fixtures.Clone(reference);
            using var loaded = new GraftOptimizer(GenericSecondMomentOptimizer.HeavyBall(resumed, 0.02), new Signum(resumed, 1, 0.5), new GraftOptions { OwnsChildren = true });
            loaded.load_state_dict(path);
            for (int step = 6; step < 9; step++) {
                SetGradients(reference, step);
                SetGradients(resumed, step);
                plain.step();
                loaded.step();
            }
            TestTensors.ShouldBeBitIdentical(Fixtures.Snapshot(resumed), Fixtures.Snapshot(reference), "save → load → continue");
        } finally {
            File.Delete(path);
        }
    }

    [Fact]
    public void BareProposingChildGetsTheClosedFormAndAClearErrorForTheGuardedStep()
    {
        var w = Fixtures.MakeParameters(Fixtures.Shapes);
        var alone = Fixtures.Clone(w);
        using var graft = new GraftOptimizer(new ProposingSgd(w, 0.05), GenericSecondMomentOptimizer.Adam(w, 1), new GraftOptions { OwnsChildren = true });
        using var reference = new GraftOptimizer(GenericSecondMomentOptimizer.Sgd(alone, 0.05), GenericSecondMomentOptimizer.Adam(alone, 1), new GraftOptions { OwnsChildren = true });
        graft.IsClosedForm.Should().BeTrue();
        for (int step = 0; step < 4; step++) {
            SetGradients(w, step);
            SetGradients(alone, step);
            graft.step();
            reference.step();
        }
        Fixtures.MaxRelativeDifference(w, alone).Should().BeLessThanOrEqualTo(1e-12, "the same graft as with the library's plain SGD");
        var act = () => graft.SkipNonFiniteSteps = true;
        act.Should().Throw<NotSupportedException>().WithMessage("*SkipNonFiniteSteps*back up and restore*magnitude (M) is a ProposingSgd*");
        graft.SkipNonFiniteSteps.Should().BeFalse();
    }
}
