using static TorchSharp.torch.optim;

namespace AdaGraft.Grafting;

/// <summary>The eager black-box path (Algorithm 3): save, step M, measure and restore, step D, measure, combine.</summary>
public sealed partial class GraftOptimizer
{
    private Measured BlackBoxStep()
    {
        int n = _params.Length;
        var active = new bool[n];
        for (int i = 0; i < n; i++) {
            var p = _params[i];
            using var grad = p.grad;
            if (grad is null) continue;
            active[i] = true;
            Fit(ref _saved[i], p, IsLowPrecision(p) ? ScalarType.Float32 : p.dtype).copy_(p);
        }

        var mNorms = new Tensor?[n];
        ChildStep(_magnitude, active);
        for (int i = 0; i < n; i++) {
            if (!active[i]) continue;
            var p = _params[i];
            var delta = Difference(p, _saved[i]!);
            mNorms[i] = SegmentNorms(delta, 1);
            p.copy_(_saved[i]!);
        }

        var dNorms = new Tensor?[n];
        var deltas = new Tensor?[n];
        ChildStep(_direction, active);
        for (int i = 0; i < n; i++) {
            if (!active[i]) continue;
            deltas[i] = Difference(_params[i], _saved[i]!);
            dNorms[i] = SegmentNorms(deltas[i]!, 1);
        }

        var measured = Combine(mNorms, dNorms);
        for (int i = 0; i < n; i++) {
            if (!active[i]) continue;
            var p = _params[i];
            var delta = deltas[i]!;
            ScaleSegments(delta, measured.R[i]!);
            delta.add_(_saved[i]!);
            if (!ReferenceEquals(delta, p)) p.copy_(delta);
        }
        return measured;
    }

    /// <summary>
    /// A black-box child's step; if it throws, every parameter the step works on is restored from the saved copy
    /// (the child's own state may have advanced, as TorchSharp's optimizers leave it) and the exception goes on.
    /// </summary>
    private void ChildStep(Optimizer child, bool[] active)
    {
        try {
            child.step();
        } catch {
            RestoreSaved(active);
            throw;
        }
    }

    /// <summary>Copies the saved values back into every active parameter that still has the saved copy's size.</summary>
    private void RestoreSaved(bool[] active)
    {
        for (int j = 0; j < _params.Length; j++) {
            var q = _params[j];
            if (active[j] && _saved[j] is Tensor saved && q.numel() == saved.numel()) q.copy_(saved.view(q.shape));
        }
    }
}
