namespace AdaGraft.Tests.Support;

/// <summary>Deterministic parameters and gradient streams for optimizer tests.</summary>
public static class Fixtures
{
    /// <summary>Shapes used by the parity and property tests: a vector, a matrix, a 3-d tensor and a 0-d scalar.</summary>
    public static readonly long[][] Shapes = { new long[] { 7 }, new long[] { 3, 5 }, new long[] { 2, 3, 4 }, Array.Empty<long>() };

    /// <summary>Creates parameters with values drawn from a seeded generator.</summary>
    public static List<Parameter> MakeParameters(long[][] shapes, ScalarType dtype = ScalarType.Float64, int seed = 1, Device? device = null)
    {
        using var gen = new Generator((ulong)seed);
        return shapes.Select(s => new Parameter(torch.randn(s, dtype, generator: gen).to(device ?? CPU))).ToList();
    }

    /// <summary>Copies parameters (same values, new storage).</summary>
    public static List<Parameter> Clone(IEnumerable<Parameter> ps) =>
        ps.Select(p => new Parameter(p.detach().clone())).ToList();

    /// <summary>
    /// Sets each parameter's gradient for step <paramref name="step"/>: a seeded random tensor plus 0.1·w, so that
    /// the gradient depends on the trajectory. Tensors listed in <paramref name="zeroAt"/> get an exact zero
    /// gradient on the steps it selects; coordinate 0 of every tensor (with more than one element) is always 0.
    /// </summary>
    public static void SetGradients(IList<Parameter> ps, int step, int seed = 7, Func<int, int, bool>? zeroAt = null)
    {
        using var scope = torch.NewDisposeScope();
        using var gen = new Generator((ulong)(seed * 100_003 + step));
        for (int i = 0; i < ps.Count; i++) {
            var p = ps[i];
            var g = torch.randn(p.shape, p.dtype, generator: gen).to(p.device);
            using (torch.no_grad()) g.add_(p.detach(), 0.1);
            if (p.numel() > 1) g.view(-1)[0] = 0;
            if (zeroAt is not null && zeroAt(i, step)) g.zero_();
            p.grad = g.DetachFromDisposeScope();
        }
    }

    /// <summary>Copies of <paramref name="ps"/> on the CUDA device (same values, new storage).</summary>
    public static List<Parameter> CudaCopies(IEnumerable<Parameter> ps) =>
        ps.Select(p => new Parameter(p.detach().clone().cuda())).ToList();

    /// <summary>
    /// Sets step <paramref name="step"/>'s gradients of the CPU parameters <paramref name="cpu"/> (<see cref="SetGradients"/>)
    /// and gives their CUDA copies <paramref name="gpu"/> the same values, moved.
    /// </summary>
    public static void SetGradientsOnCpuAndCuda(IList<Parameter> cpu, IList<Parameter> gpu, int step)
    {
        SetGradients(cpu, step);
        for (int i = 0; i < cpu.Count; i++) gpu[i].grad = cpu[i].grad!.cuda();
    }

    /// <summary>
    /// Builds <paramref name="make"/> over float32 parameters of <paramref name="shapes"/> (seed 1) on the CPU and over
    /// their CUDA copies, steps both <paramref name="steps"/> times on the same gradients
    /// (<see cref="SetGradientsOnCpuAndCuda"/>), asserts that the CPU parameters moved (relative 1e-3), and returns the
    /// largest relative difference of the CUDA parameters, copied back, from the CPU ones.
    /// </summary>
    public static double CpuCudaDivergence(long[][] shapes, Func<List<Parameter>, optim.Optimizer> make, int steps)
    {
        var cpu = MakeParameters(shapes, ScalarType.Float32);
        var gpu = CudaCopies(cpu);
        using var oc = make(cpu);
        using var og = make(gpu);
        for (int step = 0; step < steps; step++) {
            SetGradientsOnCpuAndCuda(cpu, gpu, step);
            oc.step();
            og.step();
        }
        var back = gpu.Select(p => new Parameter(p.detach().cpu())).ToList();
        MaxRelativeDifference(cpu, MakeParameters(shapes, ScalarType.Float32)).Should().BeGreaterThan(1e-3, "the parameters must have moved");
        return MaxRelativeDifference(back, cpu);
    }

    /// <summary>Sets step <paramref name="step"/>'s gradients of every run's parameters, then steps every run's optimizer in order.</summary>
    public static void StepAll(int step, params (IList<Parameter> Parameters, optim.Optimizer Optimizer)[] runs)
    {
        foreach (var run in runs) SetGradients(run.Parameters, step);
        foreach (var run in runs) run.Optimizer.step();
    }

    /// <summary>
    /// Sets step <paramref name="step"/>'s gradients of every list in <paramref name="parameters"/>, then steps every
    /// optimizer in order (for optimizers that share a list, or lists split over several optimizers).
    /// </summary>
    public static void StepAll(int step, IList<Parameter>[] parameters, params optim.Optimizer[] optimizers)
    {
        foreach (var ps in parameters) SetGradients(ps, step);
        foreach (var opt in optimizers) opt.step();
    }

    /// <summary>
    /// Steps <paramref name="opt"/> <paramref name="count"/> times over <paramref name="ps"/>, on steps
    /// <paramref name="from"/>, <paramref name="from"/> + 1, … of the gradient stream <see cref="SetGradients"/> draws
    /// with <paramref name="seed"/>.
    /// </summary>
    public static void Run(optim.Optimizer opt, IList<Parameter> ps, int from, int count, int seed = 7)
    {
        for (int step = from; step < from + count; step++) {
            SetGradients(ps, step, seed);
            opt.step();
        }
    }

    /// <summary>
    /// The optimizer <paramref name="make"/> builds over new parameters <paramref name="ps"/> (<see cref="Shapes"/>,
    /// seed 1), stepped <paramref name="steps"/> times on steps 0, 1, … of <see cref="SetGradients"/>'s stream
    /// (disposed if stepping fails).
    /// </summary>
    public static T Trained<T>(Func<List<Parameter>, T> make, int steps, out List<Parameter> ps)
        where T : optim.Optimizer
    {
        ps = MakeParameters(Shapes);
        var opt = make(ps);
        try {
            Run(opt, ps, 0, steps);
        } catch {
            opt.Dispose();
            throw;
        }
        return opt;
    }

    /// <summary><see cref="StepAll(int, (IList{Parameter} Parameters, optim.Optimizer Optimizer)[])"/> for steps <paramref name="from"/> to <paramref name="from"/> + <paramref name="count"/> − 1, in lockstep.</summary>
    public static void RunAll(int from, int count, params (IList<Parameter> Parameters, optim.Optimizer Optimizer)[] runs)
    {
        for (int step = from; step < from + count; step++) StepAll(step, runs);
    }

    /// <summary>
    /// Steps <paramref name="x"/> over <paramref name="a"/> and <paramref name="y"/> over <paramref name="b"/> for
    /// <paramref name="steps"/> steps on the same gradient stream (<see cref="SetGradients"/>) and returns the largest
    /// <see cref="MaxRelativeDifference"/> of the parameters after any step.
    /// </summary>
    public static double WorstDivergence(optim.Optimizer x, IList<Parameter> a, optim.Optimizer y, IList<Parameter> b, int steps)
    {
        double worst = 0;
        for (int step = 0; step < steps; step++) {
            SetGradients(a, step);
            SetGradients(b, step);
            x.step();
            y.step();
            worst = Math.Max(worst, MaxRelativeDifference(a, b));
        }
        return worst;
    }

    /// <summary>Largest |a − b| / max(max|b|, tiny) over a list of tensor pairs (tensors with no elements count as equal).</summary>
    public static double MaxRelativeDifference(IList<Parameter> a, IList<Parameter> b)
    {
        double worst = 0;
        for (int i = 0; i < a.Count; i++) worst = Math.Max(worst, RelativeDifference(a[i].detach(), b[i].detach()));
        return worst;
    }

    /// <summary>max|x − y| / max(max|y|, tiny), computed in float64; 0 for tensors with no elements.</summary>
    public static double RelativeDifference(Tensor x, Tensor y)
    {
        using var scope = torch.NewDisposeScope();
        var a = x.to_type(ScalarType.Float64);
        var b = y.to_type(ScalarType.Float64);
        if (a.numel() == 0) return 0;
        double diff = (a - b).abs().max().item<double>();
        double scale = Math.Max(b.abs().max().item<double>(), 1e-300);
        return diff / scale;
    }

    /// <summary>A copy of every parameter's values as a double array (for exact comparisons).</summary>
    public static double[][] Snapshot(IEnumerable<Parameter> ps) =>
        ps.Select(p => TestTensors.Values(p)).ToArray();
}
