using AdaGraft.Rules;

namespace AdaGraft.Tests.Fused;

/// <summary>
/// The slots of a group's small CPU tensors lie end to end, one buffer per slot (so a fused step's memory streams run on
/// across consecutive small tensors); each slot is still its own view, checked and refused like any other.
/// </summary>
public class PackedSlotTests
{
    private static readonly long[][] Shapes = { new long[] { 100 }, new long[] { 3, 7 }, new long[] { 50_000 }, new long[] { 9 } };

    private static long Aligned(long n) => (n + 15) / 16 * 16;

    [Fact]
    public void SmallTensorsSlotsLieEndToEndInOneBufferPerSlot()
    {
        var ps = Fixtures.MakeParameters(Shapes);
        using var opt = GenericSecondMomentOptimizer.TorchAdam(ps, lr: 0.01);
        foreach (int slot in new[] { SecondMomentState.M1, SecondMomentState.M2 }) {
            var at = ps.Select(p => NativeTensor.Data(opt.StateOf(p).SlotAt(slot)!)).ToArray();
            // Tensors 0, 1 and 3 are small (tensor 2 has more than one chunk and keeps a buffer of its own).
            at[1].Should().Be(at[0] + (nint)(Aligned(100) * sizeof(double)), $"slot {slot}: tensor 1 follows tensor 0");
            at[3].Should().Be(at[1] + (nint)(Aligned(21) * sizeof(double)), $"slot {slot}: tensor 3 follows tensor 1");
            foreach (var p in ps) opt.StateOf(p).SlotAt(slot)!.shape.Should().Equal(p.shape);
        }
    }

    public static TheoryData<string> Zoo() => new() { "nadam", "radam", "adamax", "adadelta", "rmsprop-centered-momentum" };

    private static (optim.Optimizer opt, Func<Parameter, RuleState> state) MakeZoo(string name, List<Parameter> ps) => name switch {
        "nadam" => With(NAdamOptimizer.Create(ps)),
        "radam" => With(RAdamOptimizer.Create(ps)),
        "adamax" => With(AdamaxOptimizer.Create(ps)),
        "adadelta" => With(AdadeltaOptimizer.Create(ps)),
        _ => With(RmsPropOptimizer.Create(ps, momentum: 0.9, centered: true)),
    };

    private static (optim.Optimizer, Func<Parameter, RuleState>) With<TOptions, TState>(RuleOptimizer<TOptions, TState> o)
        where TOptions : RuleOptions, new() where TState : RuleState => (o, p => o.StateOf(p));

    [Theory]
    [MemberData(nameof(Zoo))]
    public void TheFusedZooOptimizersPackTheirSlotsToo(string name)
    {
        var ps = Fixtures.MakeParameters(Shapes);
        var (opt, state) = MakeZoo(name, ps);
        using (opt) {
            int packed = 0;
            for (int k = 0; k < state(ps[0]).SlotCount; k++) {
                if (state(ps[0]).SlotAt(k) is not Tensor first || state(ps[1]).SlotAt(k) is not Tensor second) continue;
                NativeTensor.Data(second).Should().Be(NativeTensor.Data(first) + (nint)(Aligned(100) * sizeof(double)), $"{name} slot {k}");
                packed++;
            }
            packed.Should().BeGreaterThan(0, $"{name} allocates slots at construction");
        }
    }

    [Fact]
    public void PackedSlotsGiveTorchSharpsAdamToRoundOff()
    {
        var ours = Fixtures.MakeParameters(Shapes);
        var theirs = Fixtures.Clone(ours);
        using var opt = GenericSecondMomentOptimizer.TorchAdam(ours, lr: 0.01, weight_decay: 0.1);
        using var reference = torch.optim.Adam(theirs, lr: 0.01, weight_decay: 0.1);
        for (int t = 0; t < 10; t++) {
            Fixtures.SetGradients(ours, t);
            Fixtures.SetGradients(theirs, t);
            opt.step();
            reference.step();
        }
        opt.FusedTensorSteps.Should().Be(10 * Shapes.Length);
        Fixtures.MaxRelativeDifference(ours, theirs).Should().BeLessThan(1e-12);
    }

    [Fact]
    public void AHandedOutPackedSlotResizedIntoItsNeighbourIsRefusedAndChangesNothing()
    {
        var ps = Fixtures.MakeParameters(Shapes);
        using var opt = GenericSecondMomentOptimizer.TorchAdam(ps, lr: 0.01);
        Fixtures.SetGradients(ps, 0);
        opt.step();
        var neighbour = Fixtures.Snapshot(new[] { new Parameter(opt.StateOf(ps[1]).SlotAt(SecondMomentState.M1)!.clone()) });
        var before = Fixtures.Snapshot(ps);
        // Tensor 0's first moment, grown in place over tensor 1's (they share one buffer: 100 elements, 12 of padding, 21).
        var slot = opt.StateOf(ps[0]).GetSlot(SecondMomentState.M1)!;
        using (torch.no_grad()) using (var grown = slot.as_strided(new long[] { 100 + 12 + 21 }, new long[] { 1 }, slot.storage_offset())) slot.set_(grown);
        Fixtures.SetGradients(ps, 1);
        var act = () => opt.step();
        act.Should().Throw<InvalidOperationException>().WithMessage("*parameter 0*resized, replaced*");
        TestTensors.ShouldBeBitIdentical(Fixtures.Snapshot(ps), before, "a refused step changes no parameter");
        TestTensors.ShouldBeBitIdentical(Fixtures.Snapshot(new[] { new Parameter(opt.StateOf(ps[1]).SlotAt(SecondMomentState.M1)!.clone()) }),
            neighbour, "nor the neighbour's slot");
    }
}
