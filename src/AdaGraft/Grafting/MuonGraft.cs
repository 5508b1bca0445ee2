using AdaGraft.Optimizers;

namespace AdaGraft.Grafting;

/// <summary>
/// Muon sized by exact grafting instead of a fixed size rule: each matrix's step has Adam's norm (per tensor) and
/// Muon's orthogonalised direction — the graft that Moonlight's <c>0.2·√max(rows, cols)</c> rule approximates by formula
/// (<see cref="MuonSizeRule.MatchAdamWRms"/> matches AdamW's update RMS on average; the graft matches Adam's step norm
/// exactly, every step, per matrix).
/// </summary>
public static class MuonGraft
{
    /// <summary>
    /// Adam#Muon per tensor: M = <c>torch.optim.Adam</c> (<see cref="GenericSecondMomentOptimizer.TorchAdam(IEnumerable{Parameter}, double, double, double, double, double, bool, bool)"/>)
    /// with <paramref name="lr"/>, <paramref name="betas"/> and <paramref name="eps"/>; D = <see cref="MuonOptimizer"/>
    /// with learning rate 1 (it cancels), <see cref="MuonSizeRule.None"/>, no weight decay, Muon for the parameters of
    /// rank ≥ 2 and an AdamW (the same betas and ε) for the rest, which therefore take Adam's steps. The graft owns both
    /// children. Weight decay is left out: a decoupled decay inside M would only change the step's length, not pull
    /// the weights towards 0.
    /// </summary>
    public static GraftOptimizer FromAdam(IEnumerable<Parameter> parameters, double lr = 1e-3, (double beta1, double beta2)? betas = null,
        double eps = 1e-8, double momentum = 0.95, bool nesterov = true, int ns_steps = 5,
        NewtonSchulzPrecision ns_precision = NewtonSchulzPrecision.Fp32)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        var list = parameters.ToList();
        var (beta1, beta2) = betas ?? (0.9, 0.999);
        var d = MuonOptimizer.CreateWithAdamW(list, lr: 1, weight_decay: 0, momentum: momentum, nesterov: nesterov, ns_steps: ns_steps,
            adjust_lr_fn: MuonSizeRule.None, ns_precision: ns_precision, adamw_betas: (beta1, beta2), adamw_eps: eps);
        GenericSecondMomentOptimizer? m = null;
        try {
            // The graft pairs M's and D's groups and parameters by position: M gets D's groups (Muon's, then AdamW's).
            m = GenericSecondMomentOptimizer.TorchAdam(d.Groups.Select(g => new GenericSecondMomentOptimizer.ParamGroup(g.Parameters)).ToList(),
                lr: lr, beta1: beta1, beta2: beta2, eps: eps);
            return new GraftOptimizer(m, d, new GraftOptions { Granularity = GraftGranularity.PerTensor, OwnsChildren = true });
        } catch {
            m?.Dispose();
            d.Dispose();
            throw;
        }
    }
}
