namespace AdaGraft.Tests.Hardening;

/// <summary>
/// A state remembers what its checks found about its own slots (fit, fused eligibility, data addresses) until a slot
/// is replaced or handed out. These tests replace slots in every way the library allows (load, copy from another
/// state, move, re-initialise) and hand them out, then step on the fused path: the step must use the new slots (the
/// same numbers as the eager path over the same states) and still refuse a slot the caller made unfit.
/// </summary>
public sealed class SlotCacheTests
{
    private static readonly long[][] Shapes = { new long[] { 64 }, new long[] { 4, 4 } };

    private static GenericSecondMomentOptimizer Adam(IList<Parameter> ps, bool fused)
    {
        var o = GenericSecondMomentOptimizer.TorchAdam(ps, lr: 0.01, amsgrad: true);
        o.FusedCpuKernel = fused;
        return o;
    }

    private static byte[] Save(GenericSecondMomentOptimizer opt) => StateBytes.Save(opt.save_state_dict);

    private static void Load(GenericSecondMomentOptimizer opt, byte[] bytes) => StateBytes.Load(bytes, opt.load_state_dict);

    [Fact]
    public void A_fused_step_after_loading_another_state_uses_the_loaded_slots()
    {
        // Another trajectory's state, saved.
        var otherPs = Fixtures.MakeParameters(Shapes, ScalarType.Float32, seed: 5);
        using var other = Adam(otherPs, fused: true);
        Fixtures.Run(other, otherPs, 1, 4, seed: 11);
        var saved = Save(other);

        var fusedPs = Fixtures.MakeParameters(Shapes, ScalarType.Float32);
        var eagerPs = Fixtures.Clone(fusedPs);
        using var fused = Adam(fusedPs, fused: true);
        using var eager = Adam(eagerPs, fused: false);
        // Warm the fused optimizer's cached facts, then replace every slot by loading.
        Fixtures.Run(fused, fusedPs, 1, 3, seed: 3);
        Load(fused, saved);
        Load(eager, saved);
        using (torch.no_grad()) for (int i = 0; i < fusedPs.Count; i++) eagerPs[i].copy_(fusedPs[i]);
        long before = fused.FusedTensorSteps;

        Fixtures.Run(fused, fusedPs, 5, 3, seed: 13);
        Fixtures.Run(eager, eagerPs, 5, 3, seed: 13);

        fused.FusedTensorSteps.Should().Be(before + 3 * fusedPs.Count, "the loaded state is as fusable as the one it replaced");
        Fixtures.MaxRelativeDifference(fusedPs, eagerPs).Should().BeLessThan(1e-6);
        for (int i = 0; i < fusedPs.Count; i++) {
            var (a, b) = (fused.StateOf(fusedPs[i]), eager.StateOf(eagerPs[i]));
            a.Step.Should().Be(b.Step);
            Fixtures.RelativeDifference(a.SecondMoment!, b.SecondMoment!).Should().BeLessThan(1e-6);
            Fixtures.RelativeDifference(a.MaxSecondMoment!, b.MaxSecondMoment!).Should().BeLessThan(1e-6);
        }
    }

    [Fact]
    public void A_fused_step_after_copying_a_state_and_after_a_move_uses_the_new_slots()
    {
        var ps = Fixtures.MakeParameters(Shapes, ScalarType.Float64);
        var eagerPs = Fixtures.Clone(ps);
        using var fused = Adam(ps, fused: true);
        using var eager = Adam(eagerPs, fused: false);
        Fixtures.Run(fused, ps, 1, 2, seed: 3);
        Fixtures.Run(eager, eagerPs, 1, 2, seed: 3);

        // Copy each state into itself through a clone (every slot replaced), and move to the device it is on (a
        // no-op move must not disturb anything either).
        for (int i = 0; i < ps.Count; i++) {
            var state = fused.StateOf(ps[i]);
            var copy = Adam(Fixtures.Clone(new[] { ps[i] }), fused: false);
            copy.StateOf(copy.parameters().Single()).LoadStateDict(state);
            state.LoadStateDict(copy.StateOf(copy.parameters().Single()));
            copy.Dispose();
        }
        fused.to(CPU);

        Fixtures.Run(fused, ps, 3, 3, seed: 5);
        Fixtures.Run(eager, eagerPs, 3, 3, seed: 5);
        Fixtures.MaxRelativeDifference(ps, eagerPs).Should().BeLessThan(1e-12);
    }

    [Fact]
    public void A_slot_the_caller_resized_after_it_was_handed_out_is_refused_on_the_fused_path()
    {
        var ps = Fixtures.MakeParameters(Shapes, ScalarType.Float32);
        using var opt = Adam(ps, fused: true);
        Fixtures.Run(opt, ps, 1, 3, seed: 3); // the cached facts are warm
        var m2 = opt.StateOf(ps[0]).SecondMoment!;
        using (torch.no_grad()) m2.set_(torch.zeros(1_000_000));
        var before = Fixtures.Snapshot(ps);

        Fixtures.SetGradients(ps, 4, 3);
        opt.Invoking(o => o.step()).Should().Throw<InvalidOperationException>().WithMessage("*state 'm2'*parameter 0*");
        Fixtures.Snapshot(ps).Should().BeEquivalentTo(before, "a refused step changes nothing");
    }

    [Fact]
    public void A_parameter_given_new_storage_of_its_own_size_is_stepped_where_it_now_lives()
    {
        var ps = Fixtures.MakeParameters(Shapes, ScalarType.Float32);
        var eagerPs = Fixtures.Clone(ps);
        using var fused = Adam(ps, fused: true);
        using var eager = Adam(eagerPs, fused: false);
        Fixtures.Run(fused, ps, 1, 2, seed: 3);
        Fixtures.Run(eager, eagerPs, 1, 2, seed: 3);
        using (torch.no_grad()) {
            ps[0].set_(ps[0].detach().clone());
            eagerPs[0].set_(eagerPs[0].detach().clone());
        }
        Fixtures.Run(fused, ps, 3, 3, seed: 5);
        Fixtures.Run(eager, eagerPs, 3, 3, seed: 5);
        Fixtures.MaxRelativeDifference(ps, eagerPs).Should().BeLessThan(1e-6);
    }
}
