namespace AdaGraft.Tests.Preconditioners;

/// <summary>Parameters, gradient streams and checks shared by the SOAP tests.</summary>
public static class SoapTestSupport
{
    /// <summary>A matrix, a 3-d tensor, a vector and a scalar (float64).</summary>
    public static readonly long[][] Shapes = { new long[] { 4, 3 }, new long[] { 2, 3, 4 }, new long[] { 5 }, Array.Empty<long>() };

    /// <summary>
    /// Gradients with no zero coordinate (so that ε = 0 compares with Adam without 0/0): a seeded normal tensor plus
    /// 0.1·w (the trajectory matters) plus 0.05 (keeps every coordinate away from 0).
    /// </summary>
    public static void SetGradients(IList<Parameter> ps, int step, int seed = 11)
    {
        using var scope = torch.NewDisposeScope();
        using var gen = new Generator((ulong)(seed * 1_000_003 + step));
        foreach (var p in ps) {
            var g = torch.randn(p.shape, p.dtype, generator: gen).to(p.device);
            using (torch.no_grad()) g.add_(p.detach(), 0.1).add_(0.05);
            p.grad = g.DetachFromDisposeScope();
        }
    }

    /// <summary>Runs <paramref name="steps"/> steps of <paramref name="opt"/> over <paramref name="ps"/> with <see cref="SetGradients"/>'s stream.</summary>
    public static void Run(optim.Optimizer opt, IList<Parameter> ps, int steps, int first = 0)
    {
        for (int step = first; step < first + steps; step++) {
            SetGradients(ps, step);
            opt.step();
        }
    }

    /// <summary>The optimizer's saved checkpoint as bytes.</summary>
    public static byte[] Save(SoapOptimizer opt) => StateBytes.Save(opt.save_state_dict);

    /// <summary>Loads bytes written by <see cref="Save"/>.</summary>
    public static void Load(SoapOptimizer opt, byte[] bytes) => StateBytes.Load(bytes, opt.load_state_dict);

    /// <summary>max |QᵀQ − I| of a basis.</summary>
    public static double OrthonormalityError(Tensor q)
    {
        using var scope = torch.NewDisposeScope();
        var d = q.to_type(ScalarType.Float64);
        return (d.t().matmul(d) - torch.eye(q.shape[1], dtype: ScalarType.Float64)).abs().max().item<double>();
    }
}
