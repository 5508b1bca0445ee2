using AdaGraft.Rules;

namespace AdaGraft.Tests.Preconditioners;

/// <summary>Muon's checkpoints (momentum buffers, AdamW moments, step counts, options) and its refusals of bad input.</summary>
public class MuonStateTests
{
    /// <summary>
    /// Save after 7 steps (Muon and AdamW groups), load into an optimizer built with 7× the learning rates, save again:
    /// the same bytes; 5 more steps on both: bit-identical parameters. An optimizer that did not load differs.
    /// </summary>
    [Fact]
    public void StateRoundTripContinuesBitIdentically()
    {
        using var original = Fixtures.Trained(p => MuonTestSupport.Mixed(p), 7, out var w);
        var bytes = TestTensors.SaveState(original);
        var restoredParams = Fixtures.Clone(w);
        var coldParams = Fixtures.Clone(w);
        using var restored = MuonTestSupport.Mixed(restoredParams, lrScale: 7);
        using var cold = MuonTestSupport.Mixed(coldParams);
        TestTensors.LoadState(restored, bytes);
        TestTensors.SaveState(restored).Should().Equal(bytes, "the loaded optimizer saves exactly what it loaded (options included)");
        restored.StateOf(restoredParams[0]).Step.Should().Be(7);
        restored.StateOf(restoredParams[0]).SecondMoment.Should().NotBeNull("the vector is in the AdamW group");
        restored.StateOf(restoredParams[1]).SecondMoment.Should().BeNull("the matrix is in the Muon group");

        for (int step = 7; step < 12; step++) {
            foreach (var ps in new[] { w, restoredParams, coldParams }) Fixtures.SetGradients(ps, step);
            original.step();
            restored.step();
            cold.step();
        }
        TestTensors.ShouldBeBitIdentical(Fixtures.Snapshot(restoredParams), Fixtures.Snapshot(w), "after loading");
        Fixtures.MaxRelativeDifference(coldParams, w).Should().BeGreaterThan(1e-12, "an optimizer without the saved state takes other steps");
    }

    /// <summary>A checkpoint of another algorithm (another size rule) is refused before anything changes.</summary>
    [Fact]
    public void CheckpointOfAnotherSizeRuleIsRefused()
    {
        using var original = Fixtures.Trained(p => MuonTestSupport.Mixed(p), 1, out var w);
        var other = Fixtures.Clone(w);
        using var target = MuonTestSupport.Mixed(other, rule: MuonSizeRule.MatchAdamWRms);
        var before = TestTensors.SaveState(target);
        target.Invoking(t => TestTensors.LoadState(t, TestTensors.SaveState(original))).Should().Throw<InvalidDataException>().WithMessage("*SizeRule*");
        TestTensors.SaveState(target).Should().Equal(before);
    }

    // ---------------- Bad input ----------------

    public static TheoryData<string, string> BadArguments() => new() {
        { "momentum 1", "momentum" },
        { "momentum -0.1", "momentum" },
        { "ns_steps 0", "ns_steps" },
        { "ns_steps -3", "ns_steps" },
        { "eps 0", "eps" },
        { "lr -1", "lr" },
        { "weight_decay -0.1", "weight_decay" },
        { "ns_coefficients NaN", "ns_coefficients" },
        { "adamw_betas (1, 0.9)", "adamw_betas" },
        { "adamw_betas (0.9, 1)", "adamw_betas" },
        { "adamw_eps -1", "adamw_eps" },
        { "adamw_weight_decay -1", "adamw_weight_decay" },
        { "adjust_lr_fn 7", "adjust_lr_fn" },
        { "vector in a Muon group", "parameters" },
    };

    [Theory]
    [MemberData(nameof(BadArguments))]
    public void BadArgumentThrowsNamingIt(string what, string argument)
    {
        var w = Fixtures.MakeParameters(new[] { new long[] { 4, 3 }, new long[] { 5 } });
        Func<MuonOptimizer> make = what switch {
            "momentum 1" => () => MuonOptimizer.CreateWithAdamW(w, momentum: 1),
            "momentum -0.1" => () => MuonOptimizer.CreateWithAdamW(w, momentum: -0.1),
            "ns_steps 0" => () => MuonOptimizer.CreateWithAdamW(w, ns_steps: 0),
            "ns_steps -3" => () => MuonOptimizer.CreateWithAdamW(w, ns_steps: -3),
            "eps 0" => () => MuonOptimizer.CreateWithAdamW(w, eps: 0),
            "lr -1" => () => MuonOptimizer.CreateWithAdamW(w, lr: -1),
            "weight_decay -0.1" => () => MuonOptimizer.CreateWithAdamW(w, weight_decay: -0.1),
            "ns_coefficients NaN" => () => MuonOptimizer.CreateWithAdamW(w, ns_coefficients: (3.4445, double.NaN, 2.0315)),
            "adamw_betas (1, 0.9)" => () => MuonOptimizer.CreateWithAdamW(w, adamw_betas: (1, 0.9)),
            "adamw_betas (0.9, 1)" => () => MuonOptimizer.CreateWithAdamW(w, adamw_betas: (0.9, 1)),
            "adamw_eps -1" => () => MuonOptimizer.CreateWithAdamW(w, adamw_eps: -1),
            "adamw_weight_decay -1" => () => MuonOptimizer.CreateWithAdamW(w, adamw_weight_decay: -1),
            "adjust_lr_fn 7" => () => MuonOptimizer.CreateWithAdamW(w, adjust_lr_fn: (MuonSizeRule)7),
            "vector in a Muon group" => () => MuonOptimizer.Create(w),
            _ => throw new ArgumentOutOfRangeException(nameof(what)),
        };
        make.Should().Throw<ArgumentException>().Which.ParamName.Should().Be(argument);
    }

    public static TheoryData<string> StepTimeMisuse() => new() {
        "momentum set to 1.5", "ns_steps set to 0", "AdamW group switched to Muon", "sparse gradient", "adamw beta2 set to 1",
    };

    /// <summary>
    /// Misuse discovered at the step (a group option set after construction, a vector moved into Muon, a sparse
    /// gradient) raises before any parameter or state changes — though the first group's tensors come first.
    /// </summary>
    [Theory]
    [MemberData(nameof(StepTimeMisuse))]
    public void StepTimeMisuseRaisesBeforeAnyChange(string what)
    {
        using var opt = Fixtures.Trained(p => MuonTestSupport.Mixed(p), 2, out var w);
        var before = Fixtures.Snapshot(w);
        Fixtures.SetGradients(w, 2);
        var groups = opt.Groups.ToList();
        switch (what) {
            case "momentum set to 1.5": groups[1].Options.Momentum = 1.5; break;
            case "ns_steps set to 0": groups[1].Options.NsSteps = 0; break;
            case "AdamW group switched to Muon": groups[1].Options.UseMuon = true; break;
            case "adamw beta2 set to 1": groups[1].Options.AdamBeta2 = 1; break;
            case "sparse gradient":
                using (var dense = w[0].grad!.clone()) w[0].grad = dense.to_sparse();
                break;
        }
        var state = TestTensors.SaveState(opt); // the options as set (they are part of the checkpoint)
        opt.Invoking(o => o.step()).Should().Throw<Exception>().Which.Should().Match<Exception>(e => e is ArgumentException || e is NotSupportedException);
        TestTensors.ShouldBeBitIdentical(Fixtures.Snapshot(w), before, "(no parameter may change)");
        TestTensors.SaveState(opt).Should().Equal(state, "the failed step leaves the state as it was");
    }

    /// <summary>Schedulers cycle Muon's momentum in Muon groups and AdamW's β1 in AdamW groups.</summary>
    [Fact]
    public void MomentumOfAGroupIsMuonsOrAdamWsByItsKind()
    {
        var w = Fixtures.MakeParameters(Fixtures.Shapes);
        using var opt = MuonTestSupport.Mixed(w);
        var groups = opt.Groups.Cast<MomentParamGroup<MuonOptions>>().ToList();
        groups[0].Momentum.Should().Be(0.95);
        groups[1].Betas.Should().Be((0.9, 0.95));
        groups[0].Momentum = 0.85;
        groups[1].Momentum = 0.8;
        groups[0].Options.Momentum.Should().Be(0.85);
        groups[1].Options.AdamBeta1.Should().Be(0.8);
        groups[1].Options.Momentum.Should().Be(0.95, "an AdamW group's Muon momentum is untouched");
    }
}
