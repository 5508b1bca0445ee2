namespace AdaGraft.Benchmarks;

/// <summary>What every benchmark and timing aid here measures on: the parameters, the grafts, and the step timer.</summary>
internal static class Workload
{
    /// <summary><paramref name="tensors"/> float32 parameters of <paramref name="elements"/> each with fixed gradients (seed 1).</summary>
    public static List<Parameter> Parameters(int tensors, long elements, Device? device = null)
    {
        torch.manual_seed(1);
        return Enumerable.Range(0, tensors).Select(_ => {
            var p = new Parameter(torch.randn(elements, device: device));
            p.grad = torch.randn(elements, device: device);
            return p;
        }).ToList();
    }

    /// <summary>The paper's SGD#Adam: heavy ball (lr 1e-3) gives the norm, TorchAdam (lr 1) the direction; children owned.</summary>
    public static GraftOptimizer SgdAdamGraft(IEnumerable<Parameter> ps, GraftOptions? options = null) =>
        new(GenericSecondMomentOptimizer.HeavyBall(ps, 1e-3), GenericSecondMomentOptimizer.TorchAdam(ps, lr: 1),
            (options ?? new GraftOptions()) with { OwnsChildren = true });

    /// <summary>SGD#AdaGrad (heavy ball lr 1e-3, AdaGrad lr 1), the schedule-discovery graft; children owned.</summary>
    public static GraftOptimizer SgdAdaGradGraft(IEnumerable<Parameter> ps) =>
        new(GenericSecondMomentOptimizer.HeavyBall(ps, 1e-3), GenericSecondMomentOptimizer.AdaGrad(ps, 1), new GraftOptions { OwnsChildren = true });

    /// <summary>The black-box graft of TorchSharp's built-in SGD (momentum 0.9) and Adam (lr 1); children owned.</summary>
    public static GraftOptimizer BuiltInBlackBox(IEnumerable<Parameter> ps, GraftOptions? options = null) =>
        new(optim.SGD(ps, 1e-3, momentum: 0.9), optim.Adam(ps, lr: 1), (options ?? new GraftOptions()) with { Path = GraftPath.BlackBox, OwnsChildren = true });

    /// <summary>
    /// Per-step wall time of <paramref name="step"/> over 30 steps after 5 warm-up steps, synchronised and enqueue-only
    /// (the stopwatch read before synchronising: a step that never blocks the host enqueues much faster than it runs).
    /// </summary>
    public static (double synchronised, double enqueue) Time(Action step, bool cuda)
    {
        for (int i = 0; i < 5; i++) step();
        if (cuda) torch.cuda.synchronize();
        const int n = 30;
        var sw = Stopwatch.StartNew();
        for (int i = 0; i < n; i++) step();
        double enqueue = sw.Elapsed.TotalMilliseconds / n;
        if (cuda) torch.cuda.synchronize();
        return (sw.Elapsed.TotalMilliseconds / n, enqueue);
    }
}
