using System.Reflection;
using AdaGraft.Rules;

namespace AdaGraft.Tests.Table;

/// <summary>
/// What PyTorch's optimizer tests check for every <c>OptimizerInfo</c>, over every entry of <see cref="OptimizerTable"/>:
/// the table covers every optimizer type and declares its capabilities truly; fused = eager with gradients set to null
/// at step 2 and a layer frozen at step 3 and unfrozen at step 5; a parameter without a gradient neither moves nor
/// advances its state; a zero-size parameter; a group whose learning rate is ~0 stays put; the state round trip
/// through every reference type (<see cref="GraftOptimizer"/>, <see cref="OptimizerHelper"/>, and the state dictionary any reference reaches).
/// </summary>
public sealed class OptimizerTableTests
{
    // ---------------- The table itself ----------------

    /// <summary>Every optimizer type of <c>AdaGraft.Optimizers</c> has an entry, and each declared capability matches the type.</summary>
    [Fact]
    public void TheTableCoversEveryOptimizerTypeAndDeclaresItsCapabilitiesTruly()
    {
        var types = typeof(GenericSecondMomentOptimizer).Assembly.GetExportedTypes()
            .Where(t => t.Namespace == "AdaGraft.Optimizers" && t.IsClass && !t.IsAbstract && typeof(OptimizerHelper).IsAssignableFrom(t))
            .ToList();
        types.Should().HaveCountGreaterThanOrEqualTo(12);
        OptimizerTable.DeclaredTypes.Should().BeEquivalentTo(types, "every optimizer type has declared capabilities");
        OptimizerTable.All.Select(e => e.Type).Distinct().Should().BeEquivalentTo(types, "every optimizer type has a configuration");
        OptimizerTable.All.Select(e => e.Name).Should().OnlyHaveUniqueItems();

        foreach (var type in types) {
            var caps = OptimizerTable.CapabilitiesOf(type);
            var presetArguments = DropIn.Presets.All.Values.Where(m => m.DeclaringType == type)
                .SelectMany(m => m.GetParameters().Select(p => p.Name!)).ToHashSet();
            bool Declares(Capability c) => (caps & c) == c;
            Declares(Capability.FusedKernel).Should().Be(type.GetProperty("FusedCpuKernel") is not null, $"{type.Name}: fused kernel");
            Declares(Capability.ClosedFormChild).Should().Be(typeof(IProposingOptimizer).IsAssignableFrom(type), $"{type.Name}: closed-form child");
            Declares(Capability.BlackBoxOnly).Should().BeFalse($"{type.Name}: the library's optimizers all propose their steps");
            Declares(Capability.GroupsAndSchedulers).Should().BeTrue($"{type.Name}: every rule optimizer takes groups");
            Declares(Capability.CyclesMomentum).Should().Be(typeof(optim.IMomentum).IsAssignableFrom(type), $"{type.Name}: IMomentum");
            Declares(Capability.Maximize).Should().Be(presetArguments.Contains("maximize"), $"{type.Name}: maximize");
            Declares(Capability.WeightDecay).Should().Be(presetArguments.Contains("weight_decay"), $"{type.Name}: weight_decay");
            Declares(Capability.Momentum).Should().Be(presetArguments.Contains("momentum") || presetArguments.Contains("beta1"), $"{type.Name}: momentum");
            Declares(Capability.TorchReference).Should().Be(OptimizerTable.All.Any(e => e.Type == type && e.Reference is not null), $"{type.Name}: reference");
        }
    }

    /// <summary>Each factory builds its declared type; <see cref="OptimizerInfo.Stateless"/> is true exactly when no slot is allocated; error inputs name a preset.</summary>
    [Theory]
    [MemberData(nameof(OptimizerTable.Names), MemberType = typeof(OptimizerTable))]
    public void AnEntryBuildsItsTypeAndDeclaresItsStateTruly(string name)
    {
        var entry = OptimizerTable.Get(name);
        var ps = Fixtures.MakeParameters(Fixtures.Shapes);
        using var opt = entry.Make(ps);
        opt.GetType().Should().Be(entry.Type);
        Fixtures.Run(opt, ps, 0, 2);
        long slots = OptimizerTable.SlotElements(ps.Select(p => OptimizerTable.StateOf(opt, p)));
        (slots == 0).Should().Be(entry.Stateless, $"{name} allocated {slots} state elements");
        if (entry.Errors.Count > 0) entry.Preset.Should().NotBeNull();
    }

    // ---------------- Frozen layers and null gradients ----------------

    private const int Steps = 8, NullStep = 2, FreezeAt = 3, UnfreezeAt = 5, Frozen = 1;

    /// <summary>Step <paramref name="step"/>'s gradients: none at all at step 2; none for layer 1 from step 3 until step 5.</summary>
    private static void FreezingGradients(List<Parameter> ps, int step)
    {
        Fixtures.SetGradients(ps, step);
        if (step == NullStep) foreach (var p in ps) p.grad = null;
        if (step >= FreezeAt && step < UnfreezeAt) ps[Frozen].grad = null;
    }

    private static int StepsWithGradient(int tensor, int steps) =>
        Enumerable.Range(0, steps).Count(s => s != NullStep && !(tensor == Frozen && s >= FreezeAt && s < UnfreezeAt));

    /// <summary>
    /// The hand-rolled expectation, for every entry on its default path: a parameter without a gradient does not move and
    /// its state does not advance. Each tensor of the joint run equals, bit for bit after every step, the same tensor
    /// stepped by its own optimizer only at the steps where it had a gradient; a step where no tensor has one changes
    /// neither parameters nor state.
    /// </summary>
    [Theory]
    [MemberData(nameof(OptimizerTable.Names), MemberType = typeof(OptimizerTable))]
    public void AParameterWithoutAGradientNeitherMovesNorAdvancesItsState(string name)
    {
        var entry = OptimizerTable.Get(name);
        var ps = Fixtures.MakeParameters(Fixtures.Shapes);
        var alone = ps.Select(p => Fixtures.Clone(new[] { p })).ToList();
        using var joint = entry.Make(ps);
        var singles = alone.Select(a => entry.Make(a)).ToList();
        try {
            for (int step = 0; step < Steps; step++) {
                FreezingGradients(ps, step);
                var before = Fixtures.Snapshot(ps);
                var state = OptimizerTable.SaveState(joint);
                joint.step();
                for (int i = 0; i < ps.Count; i++) {
                    if (ps[i].grad is null) {
                        Fixtures.Snapshot(ps)[i].Should().Equal(before[i], $"{name}: tensor {i} had no gradient at step {step}");
                        continue;
                    }
                    alone[i][0].grad = ps[i].grad!.clone();
                    singles[i].step();
                }
                if (step == NullStep) OptimizerTable.SaveState(joint).Should().Equal(state, $"{name}: a step without gradients changes no state");
                for (int i = 0; i < ps.Count; i++) {
                    TestTensors.ShouldBeBitIdentical(Fixtures.Snapshot(alone[i]), new[] { Fixtures.Snapshot(ps)[i] }, $"({name}, tensor {i}, step {step}: joint vs. stepped only with a gradient)");
                }
            }
            for (int i = 0; i < ps.Count; i++) OptimizerTable.StateOf(joint, ps[i]).Step.Should().Be(StepsWithGradient(i, Steps), $"{name}: tensor {i}");
            Fixtures.MaxRelativeDifference(ps, Fixtures.MakeParameters(Fixtures.Shapes)).Should().BeGreaterThan(1e-6, "the parameters moved");
        } finally {
            foreach (var s in singles) s.Dispose();
        }
    }

    /// <summary>
    /// Fused = eager (PyTorch's fused-vs-forloop check), for every entry with a fused kernel: the same gradients, set to
    /// null at step 2 and for a frozen layer at steps 3 and 4, give the same parameters and state slots (float64,
    /// 1e-12) after every step, the same step counts, and the fused run took exactly the tensor steps that had a gradient.
    /// </summary>
    [Theory]
    [MemberData(nameof(OptimizerTable.FusedNames), MemberType = typeof(OptimizerTable))]
    public void FusedEqualsEagerWithNullGradientsAndAFrozenLayer(string name)
    {
        var entry = OptimizerTable.Get(name);
        var a = Fixtures.MakeParameters(Fixtures.Shapes);
        var b = Fixtures.Clone(a);
        using var fused = entry.Make(a, fused: true);
        using var eager = entry.Make(b, fused: false);
        for (int step = 0; step < Steps; step++) {
            FreezingGradients(a, step);
            FreezingGradients(b, step);
            var frozenBefore = Fixtures.Snapshot(a)[Frozen];
            fused.step();
            eager.step();
            Fixtures.MaxRelativeDifference(a, b).Should().BeLessThanOrEqualTo(1e-12, $"{name}: parameters after step {step}");
            for (int i = 0; i < a.Count; i++) {
                RuleState sa = OptimizerTable.StateOf(fused, a[i]), sb = OptimizerTable.StateOf(eager, b[i]);
                sa.Step.Should().Be(sb.Step, $"{name}: step count of tensor {i} after step {step}");
                for (int k = 0; k < sa.SlotNames.Length; k++) {
                    var (x, y) = (sa.GetSlot(k), sb.GetSlot(k));
                    (x is null).Should().Be(y is null, $"{name}: slot {sa.SlotNames[k]} of tensor {i} allocated on one path only");
                    if (x is not null) Fixtures.RelativeDifference(x, y!).Should().BeLessThanOrEqualTo(1e-12, $"{name}: slot {sa.SlotNames[k]} of tensor {i} after step {step}");
                }
            }
            if (a[Frozen].grad is null) Fixtures.Snapshot(a)[Frozen].Should().Equal(frozenBefore, $"{name}: the frozen layer stays put at step {step} on the fused path");
        }
        long tensorSteps = Enumerable.Range(0, a.Count).Sum(i => StepsWithGradient(i, Steps));
        OptimizerTable.FusedCount(fused).Should().Be(tensorSteps, "every tensor step with a gradient took the fused path");
        OptimizerTable.FusedCount(eager).Should().Be(0);
        OptimizerTable.StateOf(fused, a[Frozen]).Step.Should().Be(StepsWithGradient(Frozen, Steps));
    }

    // ---------------- A zero-size parameter ----------------

    /// <summary>Every entry, and both paths where the entry has a fused kernel.</summary>
    public static TheoryData<string, bool> NamesAndPaths()
    {
        var data = new TheoryData<string, bool>();
        foreach (var e in OptimizerTable.All) {
            data.Add(e.Name, false);
            if (e.Has(Capability.FusedKernel)) data.Add(e.Name, true);
        }
        return data;
    }

    /// <summary>
    /// Parameters with no elements ([0] and [2, 0]) among others: steps run, the empty ones stay empty, the others take
    /// exactly the steps of an optimizer without the empty ones, and the state saves and loads.
    /// </summary>
    [Theory]
    [MemberData(nameof(NamesAndPaths))]
    public void AZeroSizeParameterIsSteppedAlongTheOthers(string name, bool fused)
    {
        var entry = OptimizerTable.Get(name);
        var reference = Fixtures.MakeParameters(new[] { new long[] { 7 }, new long[] { 3, 5 } });
        var copy = Fixtures.Clone(reference);
        var empty = new[] { new Parameter(torch.zeros(0, ScalarType.Float64)), new Parameter(torch.zeros(2, 0, ScalarType.Float64)) };
        var ps = new List<Parameter> { copy[0], empty[0], copy[1], empty[1] };
        using var opt = entry.Make(ps, fused: entry.Has(Capability.FusedKernel) ? fused : null);
        using var expected = entry.Make(reference, fused: entry.Has(Capability.FusedKernel) ? fused : null);
        for (int step = 0; step < 5; step++) {
            Fixtures.SetGradients(reference, step);
            for (int i = 0; i < copy.Count; i++) copy[i].grad = reference[i].grad!.clone();
            foreach (var e in empty) e.grad = torch.zeros(e.shape, ScalarType.Float64);
            opt.step();
            expected.step();
        }
        empty[0].shape.Should().Equal(0);
        empty[1].shape.Should().Equal(2, 0);
        TestTensors.ShouldBeBitIdentical(Fixtures.Snapshot(copy), Fixtures.Snapshot(reference), $"({name}: with and without zero-size parameters)");
        Fixtures.MaxRelativeDifference(reference, Fixtures.MakeParameters(new[] { new long[] { 7 }, new long[] { 3, 5 } })).Should().BeGreaterThan(1e-6, "the parameters moved");

        var bytes = OptimizerTable.SaveState(opt);
        using var restored = entry.Make(new List<Parameter> { Fixtures.Clone(copy)[0], new(torch.zeros(0, ScalarType.Float64)), Fixtures.Clone(copy)[1], new(torch.zeros(2, 0, ScalarType.Float64)) });
        OptimizerTable.LoadState(restored, bytes);
        OptimizerTable.SaveState(restored).Should().Equal(bytes, "a state with zero-size tensors loads back");
    }

    // ---------------- A group whose learning rate is ~0 ----------------

    /// <summary>Every entry with a learning rate of 0 and of 1e-300.</summary>
    public static TheoryData<string, double> NamesAndTinyRates()
    {
        var data = new TheoryData<string, double>();
        foreach (var e in OptimizerTable.All.Where(e => e.KeepsParameterOrder)) {
            data.Add(e.Name, 0.0);
            data.Add(e.Name, 1e-300);
        }
        return data;
    }

    /// <summary>
    /// A second group added with a learning rate of ~0 stays put bit for bit over 5 steps (weight decay and relative
    /// steps included: each scales with the learning rate), while the first group takes exactly the steps of an optimizer
    /// over its parameters alone.
    /// </summary>
    [Theory]
    [MemberData(nameof(NamesAndTinyRates))]
    public void AGroupWhoseLearningRateIsAboutZeroStaysPut(string name, double lr)
    {
        var entry = OptimizerTable.Get(name);
        var ps = Fixtures.MakeParameters(Fixtures.Shapes);
        var firstAlone = Fixtures.Clone(ps.Take(2));
        using var opt = entry.Make(ps.Take(2));
        var options = (RuleOptions)Activator.CreateInstance(opt.GetType().GetProperty("Defaults")!.PropertyType)!;
        options.LearningRate = lr;
        opt.add_param_group(new ParamGroup { Parameters = ps.Skip(2), Options = options });
        opt.ParamGroups.Last().LearningRate.Should().Be(lr);
        using var alone = entry.Make(firstAlone);
        var before = Fixtures.Snapshot(ps);
        for (int step = 0; step < 5; step++) {
            Fixtures.SetGradients(ps, step);
            for (int i = 0; i < 2; i++) firstAlone[i].grad = ps[i].grad!.clone();
            opt.step();
            alone.step();
        }
        var after = Fixtures.Snapshot(ps);
        TestTensors.ShouldBeBitIdentical(after.Skip(2).ToArray(), before.Skip(2).ToArray(), $"({name}: the group with lr {lr})");
        TestTensors.ShouldBeBitIdentical(after.Take(2).ToArray(), Fixtures.Snapshot(firstAlone), $"({name}: the first group vs. an optimizer over it alone)");
        Fixtures.MaxRelativeDifference(ps.Take(2).ToList(), Fixtures.MakeParameters(Fixtures.Shapes).Take(2).ToList()).Should().BeGreaterThan(1e-6, "the first group moved");
    }

    // ---------------- State round trip through every reference type ----------------

    /// <summary>How the state is saved and loaded.</summary>
    public enum Through
    {
        /// <summary>The optimizer as an <see cref="OptimizerHelper"/>: TorchSharp's <c>save_state_dict</c>/<c>load_state_dict(BinaryReader)</c>.</summary>
        OptimizerHelper,

        /// <summary>
        /// The in-memory state dictionary, <c>state_dict()</c>/<c>load_state_dict(StateDictionary)</c>: virtual, so the
        /// same code runs through any reference. (<c>torch.optim.Optimizer</c> itself declares no persistence member in
        /// TorchSharp 0.107; code that holds an optimizer as an <c>Optimizer</c> casts to <see cref="OptimizerHelper"/>.)
        /// </summary>
        StateDictionary,

        /// <summary>A graft with the entry as its direction, as a <see cref="GraftOptimizer"/>: its checkpoint.</summary>
        GraftOptimizer,

        /// <summary>That graft as an <see cref="OptimizerHelper"/>.</summary>
        GraftAsOptimizerHelper,

        /// <summary>That graft's in-memory state dictionary.</summary>
        GraftStateDictionary,
    }

    /// <summary>Every entry through every reference type.</summary>
    public static TheoryData<string, Through> NamesAndReferences()
    {
        var data = new TheoryData<string, Through>();
        foreach (var e in OptimizerTable.All) {
            foreach (var through in Enum.GetValues<Through>()) {
                if (e.KeepsParameterOrder || !IsGraft(through)) data.Add(e.Name, through);
            }
        }
        return data;
    }

    private static bool IsGraft(Through through) => through is Through.GraftOptimizer or Through.GraftAsOptimizerHelper or Through.GraftStateDictionary;

    /// <summary>The entry (lr × <paramref name="lrScale"/>) or, for the graft references, Graft(heavy ball, entry) in closed form.</summary>
    private static optim.Optimizer Build(OptimizerInfo entry, Through through, List<Parameter> ps, double lrScale)
    {
        if (!IsGraft(through)) return entry.Make(ps, lrScale);
        var path = entry.Has(Capability.ClosedFormChild) ? GraftPath.ClosedForm : GraftPath.BlackBox;
        return new GraftOptimizer(OptimizerTable.Make("heavy-ball", ps, lrScale), entry.Make(ps, lrScale), new GraftOptions { OwnsChildren = true, Path = path });
    }

    private static void Transfer(optim.Optimizer source, optim.Optimizer target, Through through)
    {
        switch (through) {
            case Through.StateDictionary or Through.GraftStateDictionary:
                ((OptimizerHelper)target).load_state_dict(((OptimizerHelper)source).state_dict());
                break;
            case Through.OptimizerHelper or Through.GraftAsOptimizerHelper:
                Copy(((OptimizerHelper)source).save_state_dict, ((OptimizerHelper)target).load_state_dict);
                break;
            default:
                Copy(((GraftOptimizer)source).save_state_dict, ((GraftOptimizer)target).load_state_dict);
                break;
        }
    }

    private static void Copy(Action<BinaryWriter> save, Action<BinaryReader> load)
    {
        using var stream = new MemoryStream();
        using (var writer = new BinaryWriter(stream, System.Text.Encoding.UTF8, leaveOpen: true)) save(writer);
        stream.Position = 0;
        using var reader = new BinaryReader(stream);
        load(reader);
        stream.Position.Should().Be(stream.Length, "the whole state is read");
    }

    /// <summary>
    /// Save after 5 steps through one reference type, load through the same type into an optimizer built with 7× the
    /// learning rate over a copy of the parameters: the loaded optimizer's own checkpoint equals the source's, and 5
    /// more steps on both are bit-identical (a fresh optimizer that did not load takes other steps unless the entry is
    /// stateless).
    /// </summary>
    [Theory]
    [MemberData(nameof(NamesAndReferences))]
    public void TheStateRoundTripsThroughEveryReferenceType(string name, Through through)
    {
        var entry = OptimizerTable.Get(name);
        using var source = Fixtures.Trained(p => Build(entry, through, p, 1), 5, out var w);
        var restoredParams = Fixtures.Clone(w);
        var coldParams = Fixtures.Clone(w);
        using var restored = Build(entry, through, restoredParams, 7);
        using var cold = Build(entry, through, coldParams, 1);
        Transfer(source, restored, through);
        OptimizerTable.SaveState(restored).Should().Equal(OptimizerTable.SaveState(source), $"{name} loaded through {through} holds what was saved");
        for (int step = 5; step < 10; step++) Fixtures.StepAll(step, (w, source), (restoredParams, restored), (coldParams, cold));
        TestTensors.ShouldBeBitIdentical(Fixtures.Snapshot(restoredParams), Fixtures.Snapshot(w), $"({name} through {through}: restored vs. uninterrupted)");
        if (!entry.Stateless || IsGraft(through))
            Fixtures.MaxRelativeDifference(coldParams, w).Should().BeGreaterThan(1e-12, "an optimizer without the saved state takes other steps");
    }
}
