using AdaGraft.Optimizers;

namespace AdaGraft.Grafting;

/// <summary>The eager closed-form paths: both children propose without applying; the guarded form skips non-finite steps on the device.</summary>
public sealed partial class GraftOptimizer
{
    private Measured ClosedFormStep()
    {
        int n = _params.Length;
        var uD = new Tensor?[n];
        var fD = new double[n];
        var mNorms = new Tensor?[n];
        var dNorms = new Tensor?[n];
        for (int i = 0; i < n; i++) {
            var p = _params[i];
            var grad = p.grad;
            if (grad is null) continue;
            var propM = _closedM!.Propose(p, grad);
            var um = propM.Materialize(p, WorkFor(propM, i, forM: true), out double fm);
            mNorms[i] = SegmentNorms(um, fm);
            var propD = _closedD!.Propose(p, grad);
            uD[i] = propD.Materialize(p, WorkFor(propD, i, forM: false), out fD[i]);
            dNorms[i] = SegmentNorms(uD[i]!, fD[i]);
        }
        var measured = Combine(mNorms, dNorms);
        bool beforeMomentum = Options.Point == GraftPoint.BeforeMomentum;
        for (int i = 0; i < n; i++) {
            if (uD[i] is null) continue;
            var p = _params[i];
            Tensor target = p;
            if (beforeMomentum) {
                target = _momentum[i] ??= torch.zeros_like(p).DetachFromDisposeScope();
                target.mul_(Options.Momentum);
            }
            if (fD[i] != 0) AddScaled(target, uD[i]!, measured.R[i]!, fD[i]);
            if (beforeMomentum) p.add_(target);
        }
        return measured;
    }

    private Measured GuardedClosedFormStep()
    {
        var active = Enumerable.Range(0, _params.Length).Where(i => _params[i].grad is not null).ToArray();
        if (active.Length == 0) return ClosedFormStep();
        var ok = NonFinite.AllFinite(active.Select(i => _params[i].grad!));
        var gm = (IGuardedProposer)_magnitude;
        var gd = (IGuardedProposer)_direction;
        _momentumBackup ??= new Tensor?[_params.Length];
        foreach (int i in active) {
            gm.GuardStateOf(_params[i]).Backup();
            gd.GuardStateOf(_params[i]).Backup();
            if (_momentum[i] is Tensor m) (_momentumBackup[i] ??= torch.empty_like(m).DetachFromDisposeScope()).copy_(m);
        }
        var measured = ClosedFormStep();
        foreach (int i in active) {
            gm.GuardStateOf(_params[i]).KeepIf(ok);
            gd.GuardStateOf(_params[i]).KeepIf(ok);
            if (_momentum[i] is Tensor m) {
                var old = _momentumBackup[i];
                if (old is null) m.copy_(torch.where(ok, m, torch.zeros_like(m)));
                else m.copy_(torch.where(ok, m, old));
            }
        }
        _skipped ??= torch.zeros(Array.Empty<long>(), ScalarType.Float64, ok.device).DetachFromDisposeScope();
        _skipped.add_(ok.logical_not().to_type(ScalarType.Float64));
        return measured;
    }

    /// <summary>The buffer a proposal is materialised into: its own multiplier/divisor, or a graft work buffer.</summary>
    private Tensor WorkFor(Proposal prop, int i, bool forM)
    {
        if (prop.Multiplier is not null) return prop.Multiplier;
        if (prop.Divisor is not null) return prop.Divisor;
        // Only needed when a decoupled decay term must be folded in; M and D need distinct buffers.
        if (forM) return Fit(ref _work[i], _params[i]);
        return Fit(ref _saved[i], _params[i]);
    }

    /// <summary>Both children can back up and restore their state on the device, and every parameter is on one device.</summary>
    private void RequireGuardableChildren()
    {
        foreach (var (child, role) in new[] { (_magnitude, "magnitude (M)"), (_direction, "direction (D)") }) {
            if (child is not IGuardedProposer)
                throw new NotSupportedException($"SkipNonFiniteSteps needs children whose per-tensor state the graft can back up and restore on the device: the library's rule-based optimizers (RuleOptimizer and its subclasses, your own IRule included). The {role} is a {child.GetType().Name}, which only proposes steps (IProposingOptimizer); check the gradients' finiteness yourself and skip step() instead.");
        }
        NonFinite.RequireOneDevice(_params);
    }
}
