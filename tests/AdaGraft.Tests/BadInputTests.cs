using AdaGraft.Rules;
using static AdaGraft.Tests.Support.TestTensors;

namespace AdaGraft.Tests;

/// <summary>
/// Bad input raises a clear exception that names the argument, and leaves parameters and optimizer state as they were.
/// </summary>
public class BadInputTests
{
    private static bool Mentions(ArgumentException e, string argument) =>
        e.ParamName == argument || e.Message.Contains(argument, StringComparison.Ordinal);

    // ---------------- Invalid hyperparameters, per preset ----------------

    /// <summary>The error inputs of every <see cref="OptimizerTable"/> entry: (preset, argument, invalid value).</summary>
    public static TheoryData<string, string, double> InvalidHyperparameters {
        get {
            var data = new TheoryData<string, string, double>();
            foreach (var entry in OptimizerTable.All) {
                foreach (var error in entry.Errors) data.Add(entry.Preset!, error.Argument, error.Value);
            }
            return data;
        }
    }

    [Theory]
    [MemberData(nameof(InvalidHyperparameters))]
    public void InvalidHyperparameterThrowsNamingTheArgument(string preset, string argument, double value)
    {
        var ps = Fixtures.MakeParameters(Fixtures.Shapes);
        var before = Fixtures.Snapshot(ps);
        var entry = OptimizerTable.All.Single(e => e.Preset == preset && e.Errors.Count > 0);
        entry.Errors.Single(e => e.Argument == argument && e.Value.Equals(value)).Exception.Should().Be<ArgumentOutOfRangeException>();
        var ex = FluentActions.Invoking(() => entry.InvokePreset(ps, argument, value))
            .Should().Throw<ArgumentOutOfRangeException>().Which;
        Mentions(ex, argument).Should().BeTrue($"{preset}({argument}: {value}) must name '{argument}', but said: {ex.Message} (ParamName '{ex.ParamName}')");
        ShouldBeBitIdentical(Fixtures.Snapshot(ps), before);
    }

    [Fact]
    public void NesterovWithoutMomentumThrowsNamingNesterov()
    {
        var ps = Fixtures.MakeParameters(Fixtures.Shapes);
        var ex = FluentActions.Invoking(() => GenericSecondMomentOptimizer.TorchSgd(ps, 0.05, momentum: 0, nesterov: true))
            .Should().Throw<ArgumentException>().Which;
        Mentions(ex, "nesterov").Should().BeTrue(ex.Message);
        ex.Message.Should().Contain("momentum", "the message says how to fix it");
    }

    // ---------------- A learning rate made invalid after construction ----------------

    [Theory]
    [MemberData(nameof(OptimizerTable.GenericNames), MemberType = typeof(OptimizerTable))]
    public void NaNLearningRateSetAfterConstructionThrowsOnStepAndChangesNothing(string name)
    {
        using var opt = Fixtures.Trained(p => OptimizerTable.CreateGeneric(name, p), 3, out var ps);
        foreach (var g in opt.ParamGroups) g.LearningRate = double.NaN;
        var before = Fixtures.Snapshot(ps);
        var state = SaveState(opt);

        Fixtures.SetGradients(ps, 3);
        var ex = opt.Invoking(o => o.step()).Should().Throw<ArgumentOutOfRangeException>().Which;
        Mentions(ex, "lr").Should().BeTrue(ex.Message);
        ShouldBeBitIdentical(Fixtures.Snapshot(ps), before);
        SaveState(opt).Should().Equal(state, "the failed step leaves the state as it was");
    }

    [Fact]
    public void NaNLearningRateInTheSecondGroupStopsTheStepBeforeTheFirstGroupMoves()
    {
        var ps = Fixtures.MakeParameters(Fixtures.Shapes);
        var defaults = DefaultsOf(OptimizerTable.GenericFactory("torch-adam"));
        using var opt = new GenericSecondMomentOptimizer(
            new[] { new GenericSecondMomentOptimizer.ParamGroup(ps.Take(2)), new GenericSecondMomentOptimizer.ParamGroup(ps.Skip(2)) },
            defaults);
        Fixtures.Run(opt, ps, 0, 2);
        opt.ParamGroups.Last().LearningRate = double.NaN;
        var before = Fixtures.Snapshot(ps);
        var state = SaveState(opt);

        Fixtures.SetGradients(ps, 2);
        opt.Invoking(o => o.step()).Should().Throw<ArgumentOutOfRangeException>().Which.ParamName.Should().Be("lr");
        ShouldBeBitIdentical(Fixtures.Snapshot(ps), before);
        SaveState(opt).Should().Equal(state);
    }

    // ---------------- Bad parameter lists ----------------

    [Theory]
    [MemberData(nameof(OptimizerTable.GenericNames), MemberType = typeof(OptimizerTable))]
    public void EmptyParameterListThrowsNamingParameters(string name)
    {
        var ex = FluentActions.Invoking(() => OptimizerTable.CreateGeneric(name, new List<Parameter>()))
            .Should().Throw<ArgumentException>().Which;
        Mentions(ex, "parameters").Should().BeTrue(ex.Message);
    }

    [Theory]
    [MemberData(nameof(OptimizerTable.GenericNames), MemberType = typeof(OptimizerTable))]
    public void NullParameterListThrowsNamingParameters(string name)
    {
        FluentActions.Invoking(() => OptimizerTable.CreateGeneric(name, null!))
            .Should().Throw<ArgumentNullException>().Which.ParamName.Should().Be("parameters");
    }

    [Theory]
    [MemberData(nameof(OptimizerTable.GenericNames), MemberType = typeof(OptimizerTable))]
    public void ParameterListedTwiceInOneGroupThrows(string name)
    {
        var ps = Fixtures.MakeParameters(Fixtures.Shapes);
        var before = Fixtures.Snapshot(ps);
        var ex = FluentActions.Invoking(() => OptimizerTable.CreateGeneric(name, new[] { ps[0], ps[1], ps[0] }))
            .Should().Throw<ArgumentException>().Which;
        ex.Message.Should().Contain("more than once");
        ex.ParamName.Should().BeOneOf("parameters", "param_group");
        ShouldBeBitIdentical(Fixtures.Snapshot(ps), before);
    }

    [Theory]
    [MemberData(nameof(OptimizerTable.GenericNames), MemberType = typeof(OptimizerTable))]
    public void ParameterListedInTwoGroupsThrows(string name)
    {
        var ps = Fixtures.MakeParameters(Fixtures.Shapes);
        var defaults = DefaultsOf(OptimizerTable.GenericFactory(name));
        var ex = FluentActions.Invoking(() => new GenericSecondMomentOptimizer(
                new[] {
                    new GenericSecondMomentOptimizer.ParamGroup(new[] { ps[0], ps[1] }),
                    new GenericSecondMomentOptimizer.ParamGroup(new[] { ps[2], ps[1] }),
                },
                defaults))
            .Should().Throw<ArgumentException>().Which;
        ex.Message.Should().Contain("more than once");
    }

    [Theory]
    [MemberData(nameof(OptimizerTable.GenericNames), MemberType = typeof(OptimizerTable))]
    public void AddingAGroupWithAManagedParameterThrowsAndLeavesTheOptimizerAsItWas(string name)
    {
        var ps = Fixtures.MakeParameters(Fixtures.Shapes);
        var extra = Fixtures.MakeParameters(new[] { new long[] { 4 } }, seed: 5);
        using var opt = OptimizerTable.CreateGeneric(name, ps);
        Fixtures.Run(opt, ps, 0, 2);
        var state = SaveState(opt);

        opt.Invoking(o => o.add_param_group(new GenericSecondMomentOptimizer.ParamGroup(new[] { extra[0], ps[2] })))
            .Should().Throw<ArgumentException>().Which.Message.Should().Contain("more than once");
        opt.ParamGroups.Should().HaveCount(1);
        opt.Parameters.Should().HaveCount(ps.Count);
        SaveState(opt).Should().Equal(state);
        opt.Invoking(o => o.StateOf(extra[0])).Should().Throw<ArgumentException>("the rejected group's parameters are not managed");
    }

    // ---------------- Sparse gradients ----------------

    [Theory]
    [MemberData(nameof(OptimizerTable.GenericNames), MemberType = typeof(OptimizerTable))]
    public void SparseGradientThrowsBeforeAnyParameterChanges(string name)
    {
        var ps = Fixtures.MakeParameters(new[] { new long[] { 3 }, new long[] { 3, 3 } });
        using var opt = OptimizerTable.CreateGeneric(name, ps);
        Fixtures.Run(opt, ps, 0, 2);
        var before = Fixtures.Snapshot(ps);
        var state = SaveState(opt);

        // The dense-gradient parameter comes first: a rule that checked each gradient only when it reached it would move it.
        Fixtures.SetGradients(ps, 2);
        using (var eye = torch.eye(3, dtype: ScalarType.Float64)) ps[1].grad = eye.to_sparse();
        ps[1].grad!.is_sparse.Should().BeTrue();

        opt.Invoking(o => o.step()).Should().Throw<NotSupportedException>().Which.Message.Should().Contain("sparse");
        ShouldBeBitIdentical(Fixtures.Snapshot(ps), before, "(no parameter may change)");
        SaveState(opt).Should().Equal(state, "the failed step leaves the state as it was");
    }

    // ---------------- Foreign, mismatched and truncated state dicts ----------------

    [Theory]
    [MemberData(nameof(OptimizerTable.GenericNames), MemberType = typeof(OptimizerTable))]
    public void StateDictOfATorchSharpAdamIsRejected(string name)
    {
        var ps = Fixtures.MakeParameters(Fixtures.Shapes);
        var other = Fixtures.Clone(ps);
        using var adam = optim.Adam(other, lr: 0.01);
        Fixtures.Run(adam, other, 0, 2);
        byte[] foreign;
        using (var stream = new MemoryStream()) {
            using (var writer = new BinaryWriter(stream, System.Text.Encoding.UTF8, leaveOpen: true)) ((OptimizerHelper)adam).save_state_dict(writer);
            foreign = stream.ToArray();
        }

        using var opt = OptimizerTable.CreateGeneric(name, ps);
        Fixtures.Run(opt, ps, 0, 2);
        var before = Fixtures.Snapshot(ps);
        var state = SaveState(opt);

        FluentActions.Invoking(() => LoadState(opt, foreign))
            .Should().Throw<InvalidDataException>().Which.Message.Should().Contain("Adam");
        ShouldBeBitIdentical(Fixtures.Snapshot(ps), before);
        SaveState(opt).Should().Equal(state);
    }

    [Theory]
    [MemberData(nameof(OptimizerTable.GenericNames), MemberType = typeof(OptimizerTable))]
    public void StateDictOverParametersOfOtherShapesIsRejected(string name)
    {
        // Same number of tensors and groups; the first tensor has 8 elements instead of 7.
        var source = Fixtures.MakeParameters(new[] { new long[] { 8 }, new long[] { 3, 5 }, new long[] { 2, 3, 4 }, Array.Empty<long>() });
        using var sourceOpt = OptimizerTable.CreateGeneric(name, source);
        Fixtures.Run(sourceOpt, source, 0, 2);
        var saved = SaveState(sourceOpt);

        using var opt = Fixtures.Trained(p => OptimizerTable.CreateGeneric(name, p), 3, out var ps);
        var before = Fixtures.Snapshot(ps);
        var state = SaveState(opt);

        FluentActions.Invoking(() => LoadState(opt, saved))
            .Should().Throw<InvalidDataException>($"a {name} state saved over other shapes must not load").Which.Message.Should().Contain("shape");
        ShouldBeBitIdentical(Fixtures.Snapshot(ps), before);
        SaveState(opt).Should().Equal(state);
    }

    [Theory]
    [MemberData(nameof(OptimizerTable.GenericNames), MemberType = typeof(OptimizerTable))]
    public void TruncatedStateDictIsRejected(string name)
    {
        using var sourceOpt = Fixtures.Trained(p => OptimizerTable.CreateGeneric(name, p), 5, out var source);
        var saved = SaveState(sourceOpt);

        var ps = Fixtures.MakeParameters(Fixtures.Shapes, seed: 3);
        using var opt = OptimizerTable.CreateGeneric(name, ps);
        Fixtures.Run(opt, ps, 0, 2);
        var before = Fixtures.Snapshot(ps);
        var state = SaveState(opt);

        // Half the bytes, as asked, and a spread of other cut points (in the header, the options, every slot).
        var cuts = new SortedSet<int> { saved.Length / 2, 0, 1, saved.Length - 1 };
        for (int cut = 3; cut < saved.Length; cut += 13) cuts.Add(cut);
        foreach (int cut in cuts) {
            FluentActions.Invoking(() => LoadState(opt, saved[..cut]))
                .Should().Throw<InvalidDataException>($"{cut} of {saved.Length} bytes is a truncated state");
        }
        ShouldBeBitIdentical(Fixtures.Snapshot(ps), before);
        SaveState(opt).Should().Equal(state);

        // The untruncated bytes do load (so the rejections above are about the truncation).
        LoadState(opt, saved);
        SaveState(opt).Should().Equal(saved);
    }

    [Fact]
    public void TruncatedStateDictLoadedThroughTheOptimizerHelperBaseTypeChangesNothing()
    {
        // Code written against TorchSharp's types (checkpoint helpers, training loops) holds an Optimizer and must cast
        // to OptimizerHelper to save or load, whose load_state_dict is not virtual: the same guarantee must hold there.
        using var sourceOpt = Fixtures.Trained(p => OptimizerTable.CreateGeneric("torch-adam", p), 5, out var source);
        // Saved through the base type too: TorchSharp's generic format (an AdaGraft checkpoint's tag would stop
        // TorchSharp's loader at the first string, before the cut this test is about).
        byte[] saved;
        using (var stream = new MemoryStream()) {
            using (var writer = new BinaryWriter(stream, System.Text.Encoding.UTF8, leaveOpen: true)) ((OptimizerHelper)sourceOpt).save_state_dict(writer);
            saved = stream.ToArray();
        }

        var ps = Fixtures.MakeParameters(Fixtures.Shapes, seed: 3);
        using var opt = OptimizerTable.CreateGeneric("torch-adam", ps);
        Fixtures.Run(opt, ps, 0, 2);
        var state = SaveState(opt);

        // Three quarters of the bytes: the cut falls in a later tensor's state, after the options and first states.
        using (var stream = new MemoryStream(saved[..(saved.Length * 3 / 4)]))
        using (var reader = new BinaryReader(stream)) {
            FluentActions.Invoking(() => ((OptimizerHelper)opt).load_state_dict(reader)).Should().Throw<InvalidDataException>();
        }
        ps.Select(p => opt.StateOf(p).Step).Should().OnlyContain(s => s == 2, "no tensor's state may have been replaced");
        SaveState(opt).Should().Equal(state, "a failed load leaves options and state as they were");
    }
}
