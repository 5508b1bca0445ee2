using System.Runtime.InteropServices;

namespace AdaGraft.Rules;

/// <summary>
/// Shampoo's inverse roots by symmetric eigendecomposition: <c>X̃ = Q·diag((λ + ε)^(−1/p))·Qᵀ</c> for
/// <c>X̂ = Q·diag(λ)·Qᵀ</c>, in float32 (float64 for float64 factors) with a float64 retry. A factor that is not finite,
/// or whose root fails or is not finite in both precisions, keeps its previous root and counts one failure.
/// </summary>
/// <remarks>
/// The only host synchronisation of a Shampoo step: deciding which roots failed reads one flag per factor (one
/// device-to-host copy before the eigendecompositions and one after, per tensor, only on steps that compute roots).
/// </remarks>
internal static class ShampooRoots
{
    /// <summary>Recomputes the roots of every block of <paramref name="state"/> at step <paramref name="t"/>.</summary>
    public static void Refresh(ShampooOptions o, ShampooState state, ShampooLayout layout, long t)
    {
        var factors = state.Slot(ShampooState.Factors);
        var roots = state.RootsSlot();
        var pairs = new List<(Tensor factor, Tensor root)>();
        foreach (var b in layout.Blocks) {
            if (b.FactorOffsets is null) continue;
            for (int d = 0; d < b.Size.Length; d++) pairs.Add((b.Matrix(factors, d), b.Matrix(roots, d)));
        }
        if (pairs.Count == 0) return;
        double beta2 = o.Beta2!.Value;
        double scale = beta2 < 1 ? 1 / (1 - Math.Pow(beta2, t)) : 1;
        double p = o.ExponentOverride!.Value > 0 ? o.ExponentOverride.Value : 2.0 * layout.Order;
        double eps = o.Epsilon!.Value;
        var first = factors.dtype == ScalarType.Float64 ? ScalarType.Float64 : ScalarType.Float32;

        var finite = Finite(pairs.Select(x => (Tensor?)x.factor).ToList(), factors.device);
        var candidates = new Tensor?[pairs.Count];
        for (int i = 0; i < pairs.Count; i++) {
            if (finite[i]) candidates[i] = TryRoot(pairs[i].factor, first, scale, eps, p);
        }
        var ok = Finite(candidates, factors.device);
        if (first != ScalarType.Float64) {
            for (int i = 0; i < pairs.Count; i++) {
                if (finite[i] && !ok[i]) candidates[i] = TryRoot(pairs[i].factor, ScalarType.Float64, scale, eps, p);
            }
            if (ok.Contains(false)) ok = Finite(candidates, factors.device);
        }
        for (int i = 0; i < pairs.Count; i++) {
            if (ok[i]) pairs[i].root.copy_(candidates[i]!);
            else state.CountRootFailure();
        }
    }

    /// <summary>The root of one factor in <paramref name="dtype"/>, in the factor's dtype; null when the eigendecomposition raised.</summary>
    private static Tensor? TryRoot(Tensor factor, ScalarType dtype, double scale, double eps, double p)
    {
        try {
            var a = factor.to_type(dtype).mul(scale);
            var (values, vectors) = torch.linalg.eigh(a);
            // λ + max(0, −λ_min) + ε: the shift only undoes rounding below 0 (a sum of G·Gᵀ is positive semi-definite).
            var shift = values.min().neg_().clamp_min_(0);
            var w = values.add(shift).add_(eps).pow_(-1.0 / p);
            return vectors.mul(w.unsqueeze(0)).matmul(vectors.t()).to_type(factor.dtype);
        } catch (ExternalException) {
            return null;
        }
    }

    /// <summary>One flag per tensor: present and every element finite (one device-to-host copy).</summary>
    private static bool[] Finite(IReadOnlyList<Tensor?> tensors, Device device)
    {
        var flags = tensors.Select(x => x is null ? torch.tensor(false, device: device) : x.isfinite().all()).ToArray();
        using var host = torch.stack(flags).cpu();
        return host.data<bool>().ToArray();
    }
}
