using AdaGraft.Rules;

namespace AdaGraft.Tests.Preconditioners;

/// <summary>What the Muon tests share: seeded matrices, shapes, and an optimizer with both kinds of group.</summary>
public static class MuonTestSupport
{
    /// <summary>Shapes a Muon group takes: square, tall, wide and a convolution kernel (out × in × kh × kw).</summary>
    public static readonly long[][] MatrixShapes = { new long[] { 24, 24 }, new long[] { 48, 16 }, new long[] { 16, 48 }, new long[] { 8, 3, 3, 3 } };

    /// <summary>A seeded standard-normal float64 tensor.</summary>
    public static Tensor Gaussian(long[] shape, int seed)
    {
        using var gen = new Generator((ulong)seed);
        return torch.randn(shape, ScalarType.Float64, generator: gen);
    }

    /// <summary>Muon and AdamW groups over <paramref name="ps"/> by rank, float64 Newton–Schulz, with weight decay on both.</summary>
    public static MuonOptimizer Mixed(IEnumerable<Parameter> ps, double lrScale = 1, MuonSizeRule rule = MuonSizeRule.Original) =>
        MuonOptimizer.CreateWithAdamW(ps, lr: 0.02 * lrScale, weight_decay: 0.1, adjust_lr_fn: rule,
            ns_precision: NewtonSchulzPrecision.ParameterDtype, adamw_lr: 0.01 * lrScale, adamw_betas: (0.9, 0.95), adamw_weight_decay: 0.05);
}
