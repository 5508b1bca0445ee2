namespace AdaGraft.Tests.Grafting;

/// <summary>
/// Two grafted steps of SGD#Adam and Adam#SGD (M#D: norm from M, direction from D) on two small float64 tensors with
/// fixed gradients, checked against the update written out by hand: ΔSGD = −η·g, ΔAdam from its two moments, and
/// w ← w + ‖ΔM‖/‖ΔD‖·ΔD with the norms taken per tensor or over both tensors together.
/// </summary>
public class GraftHandDerivedTests
{
    private const double Beta1 = 0.9;
    private const double Beta2 = 0.999;
    private const double TorchAdamEps = 1e-8;
    private const double SgdMagnitudeLr = 0.1;
    private const double AdamMagnitudeLr = 0.05;
    private const double DirectionLr = 1;

    private static readonly long[][] Shapes = { new long[] { 3 }, new long[] { 2, 2 } };

    /// <summary>w = [1, −2, 3] and [[0.5, 1], [2, −1]] (row-major).</summary>
    private static readonly double[][] W0 = { new[] { 1.0, -2.0, 3.0 }, new[] { 0.5, 1.0, 2.0, -1.0 } };

    /// <summary>The gradients of step 1 and step 2 (fixed, independent of w; no zero coordinate).</summary>
    private static readonly double[][][] Gradients = {
        new[] { new[] { 0.5, -1.0, 0.25 }, new[] { 2.0, -0.5, 1.0, 0.75 } },
        new[] { new[] { -0.25, 0.5, 1.5 }, new[] { 1.0, 0.25, -2.0, 0.5 } },
    };

    public static TheoryData<string, GraftGranularity, GraftPath> Cases()
    {
        var data = new TheoryData<string, GraftGranularity, GraftPath>();
        foreach (var order in new[] { "SGD#Adam", "Adam#SGD" })
            foreach (var g in new[] { GraftGranularity.PerTensor, GraftGranularity.Global })
                foreach (var path in new[] { GraftPath.ClosedForm, GraftPath.BlackBox })
                    data.Add(order, g, path);
        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void TwoStepsMatchTheHandDerivedGraft(string order, GraftGranularity granularity, GraftPath path)
    {
        bool sgdIsMagnitude = order == "SGD#Adam";
        bool global = granularity == GraftGranularity.Global;
        // The paper form of Adam has ε = 0; TorchSharp's Adam adds ε = 1e-8 outside the root.
        double adamEps = path == GraftPath.ClosedForm ? 0 : TorchAdamEps;
        double sgdLr = sgdIsMagnitude ? SgdMagnitudeLr : DirectionLr;
        double adamLr = sgdIsMagnitude ? DirectionLr : AdamMagnitudeLr;

        var w = W0.Select((v, i) => new Parameter(torch.tensor(v, Shapes[i], ScalarType.Float64))).ToList();
        var sgd = MakeSgd(w, sgdLr, path);
        var adam = MakeAdam(w, adamLr, path);
        var options = new GraftOptions { Granularity = granularity, Path = path, OwnsChildren = true };
        using var graft = sgdIsMagnitude ? new GraftOptimizer(sgd, adam, options) : new GraftOptimizer(adam, sgd, options);
        graft.IsClosedForm.Should().Be(path == GraftPath.ClosedForm);

        var adamReference = new AdamByHand(adamLr, adamEps, W0.Select(v => v.Length).ToArray());
        var expected = W0.Select(v => (double[])v.Clone()).ToArray();
        for (int step = 0; step < 2; step++) {
            var g = Gradients[step];
            for (int i = 0; i < w.Count; i++) w[i].grad = torch.tensor(g[i], Shapes[i], ScalarType.Float64);

            var sgdDelta = g.Select(gi => gi.Select(x => -sgdLr * x).ToArray()).ToArray();
            var adamDelta = adamReference.Step(g);
            if (step == 0 && adamEps == 0) {
                // Sanity check of the hand derivation: Adam's first step with ε = 0 is −η·sign(g).
                for (int i = 0; i < g.Length; i++)
                    for (int j = 0; j < g[i].Length; j++)
                        adamDelta[i][j].Should().BeApproximately(-adamLr * Math.Sign(g[i][j]), 1e-15);
            }
            var (dm, dd) = sgdIsMagnitude ? (sgdDelta, adamDelta) : (adamDelta, sgdDelta);
            var next = Graft(expected, dm, dd, global);

            // The expected step must differ from M's and D's own steps, or the comparison proves nothing.
            MaxAbsDifference(next, Add(expected, dm)).Should().BeGreaterThan(1e-3);
            MaxAbsDifference(next, Add(expected, dd)).Should().BeGreaterThan(1e-3);
            expected = next;

            graft.step();

            var actual = w.Select(p => TestTensors.Values(p)).ToArray();
            for (int i = 0; i < actual.Length; i++) {
                double scale = expected[i].Max(Math.Abs);
                for (int j = 0; j < actual[i].Length; j++)
                    actual[i][j].Should().BeApproximately(expected[i][j], 1e-12 * scale, $"step {step + 1}, tensor {i}, element {j}");
            }
        }
    }

    private static optim.Optimizer MakeSgd(IEnumerable<Parameter> ps, double lr, GraftPath path) =>
        path == GraftPath.ClosedForm ? GenericSecondMomentOptimizer.Sgd(ps, lr) : optim.SGD(ps, lr);

    private static optim.Optimizer MakeAdam(IEnumerable<Parameter> ps, double lr, GraftPath path) =>
        path == GraftPath.ClosedForm
            ? GenericSecondMomentOptimizer.Adam(ps, lr, beta1: Beta1, beta2: Beta2)
            : optim.Adam(ps, lr, beta1: Beta1, beta2: Beta2, eps: TorchAdamEps);

    /// <summary>w + ‖ΔM‖/‖ΔD‖·ΔD, per tensor or with one ratio for all tensors.</summary>
    private static double[][] Graft(double[][] w, double[][] dm, double[][] dd, bool global)
    {
        var result = new double[w.Length][];
        double globalRatio = Norm(dm.SelectMany(x => x)) / Norm(dd.SelectMany(x => x));
        for (int i = 0; i < w.Length; i++) {
            double ratio = global ? globalRatio : Norm(dm[i]) / Norm(dd[i]);
            result[i] = w[i].Select((x, j) => x + ratio * dd[i][j]).ToArray();
        }
        return result;
    }

    private static double Norm(IEnumerable<double> v) => Math.Sqrt(v.Sum(x => x * x));

    private static double[][] Add(double[][] a, double[][] b) =>
        a.Select((x, i) => x.Select((y, j) => y + b[i][j]).ToArray()).ToArray();

    private static double MaxAbsDifference(double[][] a, double[][] b) =>
        a.SelectMany((x, i) => x.Select((y, j) => Math.Abs(y - b[i][j]))).Max();

    /// <summary>Adam written out element by element: m ← β1·m + (1−β1)·g, v ← β2·v + (1−β2)·g²,
    /// Δ = −η/(1−β1^t) · m / (√v/√(1−β2^t) + ε).</summary>
    private sealed class AdamByHand
    {
        private readonly double _lr;
        private readonly double _eps;
        private readonly double[][] _m;
        private readonly double[][] _v;
        private int _t;

        public AdamByHand(double lr, double eps, int[] sizes)
        {
            _lr = lr;
            _eps = eps;
            _m = sizes.Select(n => new double[n]).ToArray();
            _v = sizes.Select(n => new double[n]).ToArray();
        }

        public double[][] Step(double[][] g)
        {
            _t++;
            double bc1 = 1 - Math.Pow(Beta1, _t);
            double bc2 = 1 - Math.Pow(Beta2, _t);
            var delta = new double[g.Length][];
            for (int i = 0; i < g.Length; i++) {
                delta[i] = new double[g[i].Length];
                for (int j = 0; j < g[i].Length; j++) {
                    _m[i][j] = Beta1 * _m[i][j] + (1 - Beta1) * g[i][j];
                    _v[i][j] = Beta2 * _v[i][j] + (1 - Beta2) * g[i][j] * g[i][j];
                    delta[i][j] = -_lr / bc1 * _m[i][j] / (Math.Sqrt(_v[i][j]) / Math.Sqrt(bc2) + _eps);
                }
            }
            return delta;
        }
    }
}
