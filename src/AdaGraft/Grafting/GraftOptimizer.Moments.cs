using AdaGraft.Optimizers;
using static TorchSharp.torch.optim;

namespace AdaGraft.Grafting;

/// <summary>
/// Momentum and betas set through the graft reach both children: schedulers that cycle them (<c>OneCycleLR</c>,
/// <c>CyclicLR</c> with <c>cycle_momentum</c>) set them on the graft's <c>ParamGroups</c>, which are M's; before each
/// step, every β1 or β2 of an M group that changed since the last step is copied to D's group of the same index.
/// </summary>
public sealed partial class GraftOptimizer
{
    /// <summary>M's (β1, β2) per group as last seen (null where M's group has none).</summary>
    private (double? Beta1, double? Beta2)[] _seenMoments = Array.Empty<(double?, double?)>();

    /// <summary>Reads M's β1 and β2 per group as the values D already follows (after construction and after a load).</summary>
    private void SeeMoments() => _seenMoments = _magnitude.ParamGroups.Select(ReadMoments).ToArray();

    /// <summary>
    /// Copies to D every β1 and β2 that changed in M's groups since the last call and returns how to undo it (null when
    /// nothing changed), so a step whose checks fail leaves D as it was.
    /// </summary>
    private Action? FollowMagnitudeMoments()
    {
        var mGroups = _magnitude.ParamGroups.ToList();
        var dGroups = _direction.ParamGroups.ToList();
        Action? undo = null;
        var seen = _seenMoments;
        for (int i = 0; i < mGroups.Count && i < dGroups.Count && i < seen.Length; i++) {
            var now = ReadMoments(mGroups[i]);
            double? b1 = now.Beta1 != seen[i].Beta1 ? now.Beta1 : null;
            double? b2 = now.Beta2 != seen[i].Beta2 ? now.Beta2 : null;
            if (b1 is null && b2 is null) continue;
            var d = dGroups[i];
            var before = ReadMoments(d);
            WriteMoments(d, b1, b2);
            undo += () => WriteMoments(d, b1 is null ? null : before.Beta1, b2 is null ? null : before.Beta2);
        }
        if (undo is null) return null;
        SeeMoments();
        return () => {
            undo();
            _seenMoments = seen;
        };
    }

    private static (double? Beta1, double? Beta2) ReadMoments(ILearningRateController group) => group switch {
        TorchSharp.Modules.ParamGroup { Options: IMomentOptions o } => (o.Beta1, o.Beta2),
        IBetas b => b.Betas,
        IMomentum m => (m.Momentum, null),
        _ => (null, null),
    };

    /// <summary>Sets the given (non-null) β1 and β2 on a group, where it has them.</summary>
    private static void WriteMoments(ILearningRateController group, double? beta1, double? beta2)
    {
        switch (group) {
            case TorchSharp.Modules.ParamGroup { Options: IMomentOptions o }:
                if (beta1 is double o1) o.Beta1 = o1;
                if (beta2 is double o2 && o.Beta2 is not null) o.Beta2 = o2;
                break;
            case IBetas b:
                var (c1, c2) = b.Betas;
                b.Betas = (beta1 ?? c1, beta2 ?? c2);
                break;
            case IMomentum m:
                if (beta1 is double m1) m.Momentum = m1;
                break;
        }
    }

    /// <summary>
    /// β1 of M and D (their defaults), for schedulers that cycle momentum; a scheduler's per-group values reach D
    /// through <c>ParamGroups</c> (see <see cref="GraftOptimizer"/>'s remarks).
    /// </summary>
    public double Momentum {
        get => MagnitudeAs<IMomentum>().Momentum;
        set {
            MagnitudeAs<IMomentum>().Momentum = value;
            switch (_direction) {
                case IBetas b:
                    b.Betas = (value, b.Betas.Item2);
                    break;
                case IMomentum m:
                    m.Momentum = value;
                    break;
            }
        }
    }

    /// <summary>
    /// (β1, β2) of M, set on M and D (their defaults; on D each component that changed in M), for schedulers that cycle
    /// betas.
    /// </summary>
    public (double, double) Betas {
        get => MagnitudeAs<IBetas>().Betas;
        set {
            var m = MagnitudeAs<IBetas>();
            var old = m.Betas;
            m.Betas = value;
            double? b1 = value.Item1 != old.Item1 ? value.Item1 : null;
            double? b2 = value.Item2 != old.Item2 ? value.Item2 : null;
            switch (_direction) {
                case IBetas b:
                    var (c1, c2) = b.Betas;
                    b.Betas = (b1 ?? c1, b2 ?? c2);
                    break;
                case IMomentum d when b1 is double v:
                    d.Momentum = v;
                    break;
            }
        }
    }

    private T MagnitudeAs<T>() where T : class =>
        _magnitude as T ?? throw new NotSupportedException($"The magnitude optimizer ({_magnitude.GetType().Name}) has no {typeof(T).Name}; a scheduler cannot cycle it.");
}
