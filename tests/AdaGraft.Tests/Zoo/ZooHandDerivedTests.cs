namespace AdaGraft.Tests.Zoo;

/// <summary>
/// The first two steps of every zoo rule against the source paper's update equations, evaluated here in plain double
/// arithmetic on small float64 tensors with fixed values (tolerance 1e-12).
/// </summary>
public class ZooHandDerivedTests
{
    private const double Tolerance = 1e-12;

    private static readonly double[] W0 = { 0.5, -1.0, 2.0, 0.25 };
    private static readonly double[][] G = { new[] { 0.1, -0.2, 0.3, 0.0 }, new[] { -0.4, 0.05, 0.2, 0.7 } };

    private static double Norm(double[] x) => Math.Sqrt(x.Sum(v => v * v));

    /// <summary>Steps <paramref name="opt"/> twice over <paramref name="p"/> with <see cref="G"/> and checks each iterate.</summary>
    private static void CheckTwoSteps(optim.Optimizer opt, Parameter p, double[][] expected, string what)
    {
        using (opt) {
            for (int t = 0; t < 2; t++) {
                TestTensors.SetGrad(p, G[t]);
                opt.step();
                TestTensors.ShouldBeClose(TestTensors.Values(p), expected[t], Tolerance, $"{what}, step {t + 1}");
            }
        }
    }

    [Theory]
    [InlineData(0.1, 0.9, 0.9, 1e-3, 0.0)]
    [InlineData(0.05, 0.5, 0.99, 0.1, 0.02)]
    [InlineData(0.1, 0.9, 0.9, 0.0, 0.0)]
    public void Yogi(double lr, double beta1, double beta2, double eps, double v0)
    {
        var w = (double[])W0.Clone();
        var m = new double[w.Length];
        var v = Enumerable.Repeat(v0, w.Length).ToArray();
        var expected = new double[2][];
        for (int t = 1; t <= 2; t++) {
            var g = G[t - 1];
            for (int i = 0; i < w.Length; i++) {
                m[i] = beta1 * m[i] + (1 - beta1) * g[i];
                double g2 = g[i] * g[i];
                v[i] = v[i] - (1 - beta2) * Math.Sign(v[i] - g2) * g2;
                double mHat = m[i] / (1 - Math.Pow(beta1, t));
                double vHat = v[i] / (1 - Math.Pow(beta2, t));
                double denominator = Math.Sqrt(vHat) + eps;
                w[i] -= denominator == 0 ? 0 : lr * mHat / denominator;
            }
            expected[t - 1] = (double[])w.Clone();
        }
        var p = TestTensors.Vector(W0);
        CheckTwoSteps(YogiOptimizer.Create(new[] { p }, lr, beta1, beta2, eps, v0), p, expected, "Yogi");
    }

    [Theory]
    [InlineData(0.1, 0.9, 0.99, 0.0)]
    [InlineData(0.03, 0.5, 0.8, 0.3)]
    public void Lion(double lr, double beta1, double beta2, double weightDecay)
    {
        var w = (double[])W0.Clone();
        var m = new double[w.Length];
        var expected = new double[2][];
        for (int t = 1; t <= 2; t++) {
            var g = G[t - 1];
            for (int i = 0; i < w.Length; i++) {
                double update = Math.Sign(beta1 * m[i] + (1 - beta1) * g[i]);
                w[i] -= lr * (update + weightDecay * w[i]);
                m[i] = beta2 * m[i] + (1 - beta2) * g[i];
            }
            expected[t - 1] = (double[])w.Clone();
        }
        var p = TestTensors.Vector(W0);
        CheckTwoSteps(LionOptimizer.Create(new[] { p }, lr, beta1, beta2, weightDecay), p, expected, "Lion");
    }

    [Theory]
    [InlineData(0.1, 0.9, 0.999, 1e-6, 0.01, true, false)]
    [InlineData(0.2, 0.8, 0.9, 1e-3, 0.1, false, false)]
    [InlineData(0.1, 0.9, 0.999, 1e-6, 0.01, true, true)]
    public void Lamb(double lr, double beta1, double beta2, double eps, double weightDecay, bool biasCorrection, bool zeroWeights)
    {
        var w0 = zeroWeights ? new double[W0.Length] : W0;
        var w = (double[])w0.Clone();
        var m = new double[w.Length];
        var v = new double[w.Length];
        var expected = new double[2][];
        for (int t = 1; t <= 2; t++) {
            var g = G[t - 1];
            var u = new double[w.Length];
            for (int i = 0; i < w.Length; i++) {
                m[i] = beta1 * m[i] + (1 - beta1) * g[i];
                v[i] = beta2 * v[i] + (1 - beta2) * g[i] * g[i];
                double mHat = biasCorrection ? m[i] / (1 - Math.Pow(beta1, t)) : m[i];
                double vHat = biasCorrection ? v[i] / (1 - Math.Pow(beta2, t)) : v[i];
                u[i] = mHat / (Math.Sqrt(vHat) + eps) + weightDecay * w[i];
            }
            double wNorm = Norm(w), uNorm = Norm(u);
            double trust = wNorm > 0 && uNorm > 0 ? wNorm / uNorm : 1;
            for (int i = 0; i < w.Length; i++) w[i] -= lr * trust * u[i];
            expected[t - 1] = (double[])w.Clone();
        }
        var p = TestTensors.Vector(w0);
        CheckTwoSteps(LambOptimizer.Create(new[] { p }, lr, beta1, beta2, eps, weightDecay, biasCorrection), p, expected, "LAMB");
    }

    [Theory]
    [InlineData(0.5, 0.9, 0.01, 0.02, false)]
    [InlineData(1.0, 0.0, 0.0, 0.001, false)]
    [InlineData(0.5, 0.9, 0.01, 0.02, true)]
    public void Lars(double lr, double momentum, double weightDecay, double trust, bool zeroWeights)
    {
        var w0 = zeroWeights ? new double[W0.Length] : W0;
        var w = (double[])w0.Clone();
        var buf = new double[w.Length];
        var expected = new double[2][];
        for (int t = 1; t <= 2; t++) {
            var g = G[t - 1];
            double wNorm = Norm(w), gNorm = Norm(g);
            double local = wNorm > 0 && gNorm > 0 ? trust * wNorm / (gNorm + weightDecay * wNorm) : 1;
            for (int i = 0; i < w.Length; i++) {
                buf[i] = momentum * buf[i] + local * (g[i] + weightDecay * w[i]);
                w[i] -= lr * buf[i];
            }
            expected[t - 1] = (double[])w.Clone();
        }
        var p = TestTensors.Vector(w0);
        CheckTwoSteps(LarsOptimizer.Create(new[] { p }, lr, momentum, weightDecay, trust), p, expected, "LARS");
    }

    [Theory]
    [InlineData(0.1, 0.95, 0.98, 1e-8, 0.0)]
    [InlineData(0.05, 0.5, 0.7, 0.1, 0.2)]
    [InlineData(0.1, 0.9, 0.5, 0.0, 0.01)]
    public void NovoGrad(double lr, double beta1, double beta2, double eps, double weightDecay)
    {
        var w = (double[])W0.Clone();
        var m = new double[w.Length];
        double v = 0;
        var expected = new double[2][];
        for (int t = 1; t <= 2; t++) {
            var g = G[t - 1];
            double g2 = g.Sum(x => x * x);
            v = t == 1 ? g2 : beta2 * v + (1 - beta2) * g2;
            for (int i = 0; i < w.Length; i++) {
                m[i] = beta1 * m[i] + (g[i] / (Math.Sqrt(v) + eps) + weightDecay * w[i]);
                w[i] -= lr * m[i];
            }
            expected[t - 1] = (double[])w.Clone();
        }
        var p = TestTensors.Vector(W0);
        CheckTwoSteps(NovoGradOptimizer.Create(new[] { p }, lr, beta1, beta2, eps, weightDecay), p, expected, "NovoGrad");
    }

    // ---------------- Adafactor: a matrix (factored), a rank-3 tensor (factored per leading index), a vector ----------------

    private static readonly double[] MatrixW0 = { 0.5, -1.0, 2.0, 0.25, -0.75, 1.5 };
    private static readonly double[][] MatrixG = { new[] { 0.1, -0.2, 0.3, 0.4, 0.0, -0.6 }, new[] { -0.4, 0.05, 0.2, 0.7, -0.3, 0.1 } };

    /// <summary>Adafactor's β̂2 at step t: 1 − t^(−c), or the bias-corrected fixed β2.</summary>
    private static double Beta2Hat(int t, double decayRate, double? beta2) =>
        beta2 is double b ? b * (1 - Math.Pow(b, t - 1)) / (1 - Math.Pow(b, t)) : 1 - Math.Pow(t, -decayRate);

    /// <summary>
    /// Algorithm 4 (factored, per leading index) or 5 (vector) of Shazeer and Stern with clipping, optional momentum
    /// and the relative step, for a tensor stored row-major as [batch, rows, cols] (rows = 0: a vector).
    /// </summary>
    private static double[][] AdafactorReference(double[] w0, double[][] grads, int batch, int rows, int cols,
        double lr, double beta1, double decayRate, double? beta2, double eps1, double eps2, double d, bool relative)
    {
        var w = (double[])w0.Clone();
        int n = w.Length;
        var m = new double[n];
        var rAcc = new double[batch, Math.Max(rows, 1)];
        var cAcc = new double[batch, cols];
        var vAcc = new double[n];
        var result = new double[2][];
        for (int t = 1; t <= 2; t++) {
            var g = grads[t - 1];
            double bh = Beta2Hat(t, decayRate, beta2);
            var u = new double[n];
            if (rows > 0) {
                for (int b = 0; b < batch; b++) {
                    for (int i = 0; i < rows; i++) {
                        double s = 0;
                        for (int j = 0; j < cols; j++) s += g[(b * rows + i) * cols + j] * g[(b * rows + i) * cols + j] + eps1;
                        rAcc[b, i] = bh * rAcc[b, i] + (1 - bh) * s;
                    }
                    for (int j = 0; j < cols; j++) {
                        double s = 0;
                        for (int i = 0; i < rows; i++) s += g[(b * rows + i) * cols + j] * g[(b * rows + i) * cols + j] + eps1;
                        cAcc[b, j] = bh * cAcc[b, j] + (1 - bh) * s;
                    }
                    double rSum = 0;
                    for (int i = 0; i < rows; i++) rSum += rAcc[b, i];
                    for (int i = 0; i < rows; i++) {
                        for (int j = 0; j < cols; j++) {
                            int k = (b * rows + i) * cols + j;
                            double vHat = rAcc[b, i] * cAcc[b, j] / rSum;
                            u[k] = g[k] / Math.Sqrt(vHat);
                        }
                    }
                }
            } else {
                for (int k = 0; k < n; k++) {
                    vAcc[k] = bh * vAcc[k] + (1 - bh) * (g[k] * g[k] + eps1);
                    u[k] = g[k] / Math.Sqrt(vAcc[k]);
                }
            }
            double rms = Math.Sqrt(u.Sum(x => x * x) / n);
            double clip = Math.Max(1, rms / d);
            for (int k = 0; k < n; k++) u[k] /= clip;
            if (beta1 > 0) {
                for (int k = 0; k < n; k++) {
                    m[k] = beta1 * m[k] + (1 - beta1) * u[k];
                    u[k] = m[k];
                }
            }
            double alpha = lr;
            if (relative) alpha = Math.Max(eps2, Math.Sqrt(w.Sum(x => x * x) / n)) * Math.Min(lr, 1 / Math.Sqrt(t));
            for (int k = 0; k < n; k++) w[k] -= alpha * u[k];
            result[t - 1] = (double[])w.Clone();
        }
        return result;
    }

    public static TheoryData<string, double, double, double, double, double, double, bool> AdafactorConfigs() => new() {
        // name, lr, beta1, decay_rate, beta2 (NaN: schedule), eps1, clip d, relative step
        { "defaults", 0.1, 0, 0.8, double.NaN, 1e-30, 1.0, false },
        { "visible eps1, tight clipping", 0.1, 0, 0.8, double.NaN, 0.01, 0.5, false },
        { "momentum, fixed beta2", 0.1, 0.9, 0.8, 0.9, 1e-30, 1.0, false },
        { "relative step, other decay", 0.05, 0.5, 0.5, double.NaN, 1e-3, 2.0, true },
    };

    [Theory]
    [MemberData(nameof(AdafactorConfigs))]
    public void Adafactor(string what, double lr, double beta1, double decayRate, double beta2, double eps1, double d, bool relative)
    {
        double? fixedBeta2 = double.IsNaN(beta2) ? null : beta2;
        var matrix = new Parameter(torch.tensor(MatrixW0, ScalarType.Float64).reshape(2, 3));
        var rank3 = new Parameter(torch.tensor(MatrixW0.Concat(W0).Concat(new[] { -0.125, 3.0 }).ToArray(), ScalarType.Float64).reshape(2, 3, 2));
        var vector = TestTensors.Vector(W0);
        var rank3G = new[] {
            MatrixG[0].Concat(G[0]).Concat(new[] { 0.25, -0.05 }).ToArray(),
            MatrixG[1].Concat(G[1]).Concat(new[] { 0.0, 0.5 }).ToArray(),
        };
        var expectedMatrix = AdafactorReference(MatrixW0, MatrixG, 1, 2, 3, lr, beta1, decayRate, fixedBeta2, eps1, 1e-3, d, relative);
        var expectedRank3 = AdafactorReference(TestTensors.Values(rank3), rank3G, 2, 3, 2, lr, beta1, decayRate, fixedBeta2, eps1, 1e-3, d, relative);
        var expectedVector = AdafactorReference(W0, G, 1, 0, W0.Length, lr, beta1, decayRate, fixedBeta2, eps1, 1e-3, d, relative);

        using var opt = AdafactorOptimizer.Create(new[] { matrix, rank3, vector }, lr, beta1, decayRate, fixedBeta2, eps1, 1e-3, d, relative);
        for (int t = 0; t < 2; t++) {
            TestTensors.SetGrad(matrix, MatrixG[t]);
            TestTensors.SetGrad(rank3, rank3G[t]);
            TestTensors.SetGrad(vector, G[t]);
            opt.step();
            TestTensors.ShouldBeClose(TestTensors.Values(matrix), expectedMatrix[t], Tolerance, $"Adafactor ({what}) matrix, step {t + 1}");
            TestTensors.ShouldBeClose(TestTensors.Values(rank3), expectedRank3[t], Tolerance, $"Adafactor ({what}) rank-3 tensor, step {t + 1}");
            TestTensors.ShouldBeClose(TestTensors.Values(vector), expectedVector[t], Tolerance, $"Adafactor ({what}) vector, step {t + 1}");
        }
    }
}
