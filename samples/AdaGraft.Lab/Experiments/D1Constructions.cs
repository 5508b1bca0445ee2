using System;
using System.Collections.Generic;
using System.Linq;
using AdaGraft.Optimizers;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.optim;

namespace AdaGraft.Lab.Experiments;

/// <summary>
/// Appendix D.1 (a), after Wilson et al. (2017), section 3.3: over-parameterised least squares where gradient
/// descent generalises and adaptive methods do not. Point i (1-based, training points first, then test points) has
/// label y_i = +1 with probability p, else −1, and features x_i1 = y_i, x_i2 = x_i3 = 1, and a block of its own
/// starting at 1-based index 4 + 5(i − 1) in which the first coordinate (y_i = +1) or all five (y_i = −1) are 1;
/// every other coordinate is 0. Dimension d = 3 + 5(n + m), so test points' blocks are never seen in training.
/// </summary>
public sealed record LeastSquaresInstance(int Dimension, double[] TrainX, double[] TrainY, double[] TestX, double[] TestY, int Seed)
{
    /// <summary>Training points (n).</summary>
    public int TrainCount => TrainY.Length;

    /// <summary>Test points (m).</summary>
    public int TestCount => TestY.Length;

    /// <summary>Makes an instance; if the labels drawn with <paramref name="seed"/> do not have more +1 than −1
    /// training labels (needed by Wilson et al.'s construction) or lack a label, seed + 1, seed + 2, … are tried and
    /// the seed used is recorded.</summary>
    public static LeastSquaresInstance Create(int n, int m, double p, int seed)
    {
        if (n < 2) throw new ArgumentOutOfRangeException(nameof(n), n, "At least two training points.");
        if (m < 1) throw new ArgumentOutOfRangeException(nameof(m), m, "At least one test point.");
        if (!(p > 0.5 && p < 1)) throw new ArgumentOutOfRangeException(nameof(p), p, "p must lie in (1/2, 1).");
        for (int s = seed; s < seed + 1000; s++) {
            var rng = new Random(s);
            var y = Enumerable.Range(0, n + m).Select(_ => rng.NextDouble() < p ? 1.0 : -1.0).ToArray();
            var train = y.Take(n).ToArray();
            if (train.Sum() <= 0 || !train.Contains(-1.0) || !train.Contains(1.0)) continue;
            int d = 3 + 5 * (n + m);
            var x = new double[(n + m) * d];
            for (int i = 0; i < n + m; i++) {
                var row = x.AsSpan(i * d, d);
                row[0] = y[i];
                row[1] = 1;
                row[2] = 1;
                int start = 3 + 5 * i;      // 0-based; 1-based 4 + 5(i−1) for 1-based i
                int ones = y[i] > 0 ? 1 : 5;
                for (int k = 0; k < ones; k++) row[start + k] = 1;
            }
            return new LeastSquaresInstance(d, x[..(n * d)], train, x[(n * d)..], y[n..], s);
        }
        throw new InvalidOperationException($"No seed in [{seed}, {seed + 1000}) gave more positive than negative labels with p = {p}.");
    }

    /// <summary>sign(Xᵀy) of the training data (0 where Xᵀy is 0).</summary>
    public double[] SignXty()
    {
        var s = new double[Dimension];
        for (int i = 0; i < TrainCount; i++)
            for (int j = 0; j < Dimension; j++) s[j] += TrainX[i * Dimension + j] * TrainY[i];
        return s.Select(v => (double)Math.Sign(v)).ToArray();
    }
}

/// <summary>
/// Appendix D.1 (b): sparse hinge-loss classification where AdaGrad generalises better. Examples are one-hot
/// vectors e_j of ℝ^d with j uniform, labels always +1, loss [1 − y⟨z, w⟩]₊; the sample has c·d examples (c ≤ 1)
/// seen once each, one per step. The all-ones vector is optimal. Test error is the expected hinge loss over the
/// distribution, (1/d)·Σ_j [1 − w_j]₊ (exact), as in the paper's argument; the 0-1 error, the fraction of j with
/// w_j ≤ 0, is reported beside it.
/// </summary>
public sealed record SparseHingeInstance(int Dimension, int[] Sample, int Seed)
{
    /// <summary>Draws c·d coordinates uniformly (with replacement).</summary>
    public static SparseHingeInstance Create(int d, double c, int seed)
    {
        if (d < 2) throw new ArgumentOutOfRangeException(nameof(d), d, "Dimension at least 2.");
        if (!(c > 0 && c <= 1)) throw new ArgumentOutOfRangeException(nameof(c), c, "c must lie in (0, 1].");
        var rng = new Random(seed);
        int count = Math.Max(1, (int)Math.Round(c * d));
        return new SparseHingeInstance(d, Enumerable.Range(0, count).Select(_ => rng.Next(d)).ToArray(), seed);
    }

    /// <summary>The fraction of coordinates that occur in the sample.</summary>
    public double SeenFraction => Sample.Distinct().Count() / (double)Dimension;
}

/// <summary>One optimizer on one construction.</summary>
public sealed record D1Row(string Construction, string Optimizer, string Setting, int Steps, double TrainLoss, double TestError, string TestErrorMeaning, string Extra);

/// <summary>Runs every optimizer on both constructions.</summary>
public static class D1Constructions
{
    private sealed record Opt(string Name, string Setting, Func<Parameter, double, Optimizer> Make, double Lr, Func<int, double>? Schedule = null);

    /// <summary>Runs both constructions; <paramref name="progress"/> is called once per step.</summary>
    public static List<D1Row> Run(D1Settings s, Device device, Action? progress)
    {
        ArgumentNullException.ThrowIfNull(s);
        var rows = new List<D1Row>();
        rows.AddRange(RunLeastSquares(LeastSquaresInstance.Create(s.TrainPoints, s.TestPoints, s.PositiveProbability, seed: 1), s.LeastSquaresSteps, device, progress));
        rows.AddRange(RunHinge(SparseHingeInstance.Create(s.HingeDimension, s.HingeFraction, seed: 1), device, progress));
        return rows;
    }

    /// <summary>Total progress steps of <see cref="Run"/>.</summary>
    public static int TotalSteps(D1Settings s)
    {
        ArgumentNullException.ThrowIfNull(s);
        return 4 * s.LeastSquaresSteps + 4 * Math.Max(1, (int)Math.Round(s.HingeFraction * s.HingeDimension));
    }

    /// <summary>Construction (a): full-batch training from w₀ = 0 on ½·mean((⟨w, x⟩ − y)²).</summary>
    public static List<D1Row> RunLeastSquares(LeastSquaresInstance inst, int steps, Device device, Action? progress)
    {
        ArgumentNullException.ThrowIfNull(inst);
        using var scope = torch.NewDisposeScope();
        int d = inst.Dimension, n = inst.TrainCount, m = inst.TestCount;
        var x = torch.tensor(inst.TrainX, new long[] { n, d }, dtype: ScalarType.Float64, device: device);
        var y = torch.tensor(inst.TrainY, dtype: ScalarType.Float64, device: device);
        var xt = torch.tensor(inst.TestX, new long[] { m, d }, dtype: ScalarType.Float64, device: device);
        var yt = torch.tensor(inst.TestY, dtype: ScalarType.Float64, device: device);
        var u = torch.tensor(inst.SignXty(), dtype: ScalarType.Float64, device: device);

        // The minimum-norm interpolant Xᵀ(XXᵀ)⁻¹y, and GD's safe step 1/λmax of the loss's Hessian XᵀX/n.
        var gram = x.mm(x.t());
        var wMin = x.t().mv(torch.linalg.solve(gram, y));
        double lambdaMax = torch.linalg.eigvalsh(gram / n).max().item<double>();
        double minNormTest = TestError(xt, yt, wMin);

        var opts = new[] {
            new Opt("GD (SGD, full batch)", $"lr = 1/λmax = {1 / lambdaMax:G3}", (p, lr) => GenericSecondMomentOptimizer.Sgd(new[] { p }, lr), 1 / lambdaMax),
            new Opt("AdaGrad", "lr 0.1, momentum 0, ε = 0", (p, lr) => GenericSecondMomentOptimizer.AdaGrad(new[] { p }, lr, momentum: 0, eps: 0), 0.1),
            new Opt("RMSprop", "lr 0.01, momentum 0, β2 0.99, ε = 0", (p, lr) => GenericSecondMomentOptimizer.RmsProp(new[] { p }, lr, momentum: 0, beta2: 0.99, eps: 0), 0.01),
            new Opt("Adam", "lr 0.01, β (0.9, 0.999), ε = 0", (p, lr) => GenericSecondMomentOptimizer.Adam(new[] { p }, lr, eps: 0), 0.01),
        };
        var rows = new List<D1Row>();
        foreach (var o in opts) {
            var w = Train(o, d, device, steps, (v, _) => (x.mv(v) - y).square().mean() * 0.5, progress);
            using var _ = torch.no_grad();
            double train = (x.mv(w) - y).square().mean().item<double>() * 0.5;
            double test = TestError(xt, yt, w);
            double cos = (w.dot(u) / (w.norm() * u.norm() + 1e-300)).item<double>();
            string extra = o.Name.StartsWith("GD", StringComparison.Ordinal)
                ? $"‖w − w_min-norm‖/‖w_min-norm‖ = {((w - wMin).norm() / wMin.norm()).item<double>():G3}; cos(w, sign(Xᵀy)) = {cos:F4}"
                : $"cos(w, sign(Xᵀy)) = {cos:F6}; w₁ = {w[0].item<double>():F4}, w₂ = {w[1].item<double>():F4}";
            rows.Add(new D1Row("(a) least squares, SGD > AdaGrad", o.Name, o.Setting, steps, train, test, "0-1 error on fresh points", extra));
        }
        double negatives = inst.TestY.Count(v => v < 0) / (double)m;
        rows.Add(new D1Row("(a) least squares, SGD > AdaGrad", "minimum-norm solution (closed form)", "Xᵀ(XXᵀ)⁻¹y", 0, 0, minNormTest, "0-1 error on fresh points",
            $"n = {n}, d = {d}, p = {inst.TrainY.Count(v => v > 0) / (double)n:F2} in training (data seed {inst.Seed}); 1 − p on the test points = {negatives:F3}"));
        return rows;
    }

    private static double TestError(Tensor xt, Tensor yt, Tensor w)
    {
        using var _ = torch.no_grad();
        using var scope = torch.NewDisposeScope();
        var pred = xt.mv(w);
        // sign(0) counts as wrong: a point the model cannot separate is an error.
        return (pred * yt <= 0).to_type(ScalarType.Float64).mean().item<double>();
    }

    /// <summary>Construction (b): one pass over the sample, one example per step.</summary>
    public static List<D1Row> RunHinge(SparseHingeInstance inst, Device device, Action? progress)
    {
        ArgumentNullException.ThrowIfNull(inst);
        using var scope = torch.NewDisposeScope();
        int d = inst.Dimension;
        var sample = torch.tensor(inst.Sample.Select(j => (long)j).ToArray(), device: device);
        var opts = new[] {
            new Opt("SGD", "lr 1/√t (η₀ = 1)", (p, lr) => GenericSecondMomentOptimizer.Sgd(new[] { p }, lr), 1.0, t => 1 / Math.Sqrt(t + 1)),
            new Opt("AdaGrad", "lr 1, momentum 0, ε = 0", (p, lr) => GenericSecondMomentOptimizer.AdaGrad(new[] { p }, lr, momentum: 0, eps: 0), 1.0),
            new Opt("RMSprop", "lr 1, momentum 0, β2 0.99, ε = 0", (p, lr) => GenericSecondMomentOptimizer.RmsProp(new[] { p }, lr, momentum: 0, beta2: 0.99, eps: 0), 1.0),
            new Opt("Adam", "lr 1, β (0.9, 0.999), ε = 0", (p, lr) => GenericSecondMomentOptimizer.Adam(new[] { p }, lr, eps: 0), 1.0),
        };
        var rows = new List<D1Row>();
        foreach (var o in opts) {
            var w = Train(o, d, device, inst.Sample.Length, (v, t) => torch.nn.functional.relu(1 - v.index_select(0, sample.narrow(0, t, 1))).sum(), progress);
            using var _ = torch.no_grad();
            double train = torch.nn.functional.relu(1 - w.index_select(0, sample)).mean().item<double>();
            double test = torch.nn.functional.relu(1 - w).mean().item<double>();
            double zeroOne = (w <= 0).to_type(ScalarType.Float64).mean().item<double>();
            rows.Add(new D1Row("(b) sparse hinge, AdaGrad > SGD", o.Name, o.Setting, inst.Sample.Length, train, test, "expected hinge loss",
                $"0-1 error {zeroOne:F3}; mean w_j over seen j = {SeenMean(w, inst):F3}"));
        }
        rows.Add(new D1Row("(b) sparse hinge, AdaGrad > SGD", "(instance)", $"d = {d}, c = {inst.Sample.Length / (double)d:F2}", inst.Sample.Length, double.NaN,
            1 - inst.SeenFraction, "unseen fraction", $"{inst.Sample.Distinct().Count()} of {d} coordinates seen (data seed {inst.Seed})"));
        return rows;
    }

    /// <summary>
    /// Trains w₀ = 0 (float64, <paramref name="d"/> coordinates) with <paramref name="o"/>'s optimizer on
    /// <paramref name="loss"/>(w, t) for steps t = 0 … <paramref name="steps"/> − 1, stepping <paramref name="o"/>'s
    /// schedule (if any) after each step; each step's temporaries are freed with it.
    /// </summary>
    private static Parameter Train(Opt o, int d, Device device, int steps, Func<Parameter, int, Tensor> loss, Action? progress)
    {
        var w = new Parameter(torch.zeros(d, dtype: ScalarType.Float64, device: device));
        using var opt = o.Make(w, o.Lr);
        var sched = o.Schedule is null ? null : torch.optim.lr_scheduler.LambdaLR(opt, o.Schedule);
        for (int t = 0; t < steps; t++) {
            using (var step = torch.NewDisposeScope()) {
                opt.zero_grad();
                loss(w, t).backward();
                opt.step();
            }
            sched?.step();
            progress?.Invoke();
        }
        return w;
    }

    private static double SeenMean(Tensor w, SparseHingeInstance inst)
    {
        using var scope = torch.NewDisposeScope();
        var seen = torch.tensor(inst.Sample.Distinct().Select(j => (long)j).ToArray(), device: w.device);
        return w.index_select(0, seen).mean().item<double>();
    }
}
