namespace AdaGraft.Diagnostics;

/// <summary>The shapes of implicit step-size schedules seen in the paper (sections 3.4 and 4.2).</summary>
public enum ScheduleFamily
{
    /// <summary><c>c0 + c1·t</c> (AdaGrad's correction in vision).</summary>
    Linear,

    /// <summary><c>a·t^α</c> (α ≈ −0.27 in the paper's translation run).</summary>
    PowerLaw,

    /// <summary><c>a·e^(b·t)</c>.</summary>
    Exponential,
}

/// <summary>A fitted schedule: <see cref="A"/> and <see cref="B"/> are (c0, c1), (a, α) or (a, b) by family.</summary>
/// <param name="Family">The shape.</param>
/// <param name="A">c0 (linear) or a (power law, exponential).</param>
/// <param name="B">c1 (linear), α (power law) or b (exponential).</param>
/// <param name="RSquared">Coefficient of determination of the fit, measured on the original values (comparable across families).</param>
/// <remarks><c>.ToCorrection()</c> (namespace <c>AdaGraft.Schedules</c>) turns a fit into the learning-rate correction of
/// its family, for <c>CorrectedScheduler</c>.</remarks>
public sealed record ScheduleFitResult(ScheduleFamily Family, double A, double B, double RSquared)
{
    /// <summary>The number of points fitted (0 when the result was built by hand).</summary>
    public int Points { get; init; }

    /// <summary>The fitted value at step <paramref name="t"/>.</summary>
    public double Evaluate(double t) => Family switch {
        ScheduleFamily.Linear => A + B * t,
        ScheduleFamily.PowerLaw => A * Math.Pow(t, B),
        _ => A * Math.Exp(B * t),
    };

    /// <inheritdoc />
    public override string ToString() => Family switch {
        ScheduleFamily.Linear => $"linear: {A:G4} + {B:G4}·t (R² = {RSquared:F4})",
        ScheduleFamily.PowerLaw => $"power law: {A:G4}·t^{B:G4} (R² = {RSquared:F4})",
        _ => $"exponential: {A:G4}·e^({B:G4}·t) (R² = {RSquared:F4})",
    };
}

/// <summary>
/// Least-squares fits of a recorded ratio series (e.g. the global ‖ΔM‖/‖ΔD‖ of SGD#AdaGrad) to the paper's
/// schedule shapes. Power law and exponential are fitted by linear least squares on log values (positive values only).
/// </summary>
public static class ScheduleFitter
{
    /// <summary>Fits <c>y ≈ c0 + c1·t</c>.</summary>
    public static ScheduleFitResult Linear(IReadOnlyList<double> t, IReadOnlyList<double> y)
    {
        Check(t, y);
        var (a, b, r2) = Line(t, y);
        return new ScheduleFitResult(ScheduleFamily.Linear, a, b, r2) { Points = t.Count };
    }

    /// <summary>
    /// Ordinary least squares through at least two finite points (centred sums, so large x such as step numbers lose
    /// no precision): intercept, slope and R².
    /// </summary>
    public static (double intercept, double slope, double rSquared) Line(IReadOnlyList<double> x, IReadOnlyList<double> y)
    {
        ArgumentNullException.ThrowIfNull(x);
        ArgumentNullException.ThrowIfNull(y);
        if (x.Count != y.Count) throw new ArgumentException($"x has {x.Count} points but y has {y.Count}.", nameof(y));
        if (x.Count < 2) throw new ArgumentException($"A line needs at least 2 points, got {x.Count}.", nameof(x));
        for (int i = 0; i < x.Count; i++) {
            if (!double.IsFinite(x[i]) || !double.IsFinite(y[i]))
                throw new ArgumentException($"Point {i} is not finite: ({x[i]}, {y[i]}).", nameof(y));
        }
        var (a, b) = LeastSquares(x, y);
        return (a, b, RSquared(x, y, v => a + b * v));
    }

    /// <summary>Fits <c>y ≈ a·t^α</c> (t &gt; 0, y &gt; 0).</summary>
    public static ScheduleFitResult PowerLaw(IReadOnlyList<double> t, IReadOnlyList<double> y)
    {
        Check(t, y);
        RequirePositive(t, nameof(t), "power law");
        RequirePositive(y, nameof(y), "power law");
        var (la, alpha) = LeastSquares(t.Select(v => Math.Log(v)).ToArray(), y.Select(v => Math.Log(v)).ToArray());
        double a = Math.Exp(la);
        return new ScheduleFitResult(ScheduleFamily.PowerLaw, a, alpha, RSquared(t, y, x => a * Math.Pow(x, alpha))) { Points = t.Count };
    }

    /// <summary>Fits <c>y ≈ a·e^(b·t)</c> (y &gt; 0).</summary>
    public static ScheduleFitResult Exponential(IReadOnlyList<double> t, IReadOnlyList<double> y)
    {
        Check(t, y);
        RequirePositive(y, nameof(y), "exponential");
        var (la, b) = LeastSquares(t, y.Select(v => Math.Log(v)).ToArray());
        double a = Math.Exp(la);
        return new ScheduleFitResult(ScheduleFamily.Exponential, a, b, RSquared(t, y, x => a * Math.Exp(b * x))) { Points = t.Count };
    }

    /// <summary>Every family that applies to the data, best (highest R²) first.</summary>
    public static IReadOnlyList<ScheduleFitResult> All(IReadOnlyList<double> t, IReadOnlyList<double> y)
    {
        Check(t, y);
        var fits = new List<ScheduleFitResult> { Linear(t, y) };
        bool positiveY = y.All(v => v > 0);
        if (positiveY && t.All(v => v > 0)) fits.Add(PowerLaw(t, y));
        if (positiveY) fits.Add(Exponential(t, y));
        return fits.OrderByDescending(f => f.RSquared).ToList();
    }

    /// <summary>The family with the highest R².</summary>
    public static ScheduleFitResult Best(IReadOnlyList<double> t, IReadOnlyList<double> y) => All(t, y)[0];

    private static (double intercept, double slope) LeastSquares(IReadOnlyList<double> x, IReadOnlyList<double> y)
    {
        int n = x.Count;
        double mx = x.Average(), my = y.Average();
        double sxx = 0, sxy = 0;
        for (int i = 0; i < n; i++) {
            sxx += (x[i] - mx) * (x[i] - mx);
            sxy += (x[i] - mx) * (y[i] - my);
        }
        if (sxx == 0) throw new ArgumentException("All x are equal (every step is the same): the slope is undetermined; a schedule needs at least two distinct steps.", nameof(x));
        double slope = sxy / sxx;
        return (my - slope * mx, slope);
    }

    private static double RSquared(IReadOnlyList<double> t, IReadOnlyList<double> y, Func<double, double> f)
    {
        double my = y.Average(), ssTot = 0, ssRes = 0;
        for (int i = 0; i < y.Count; i++) {
            ssTot += (y[i] - my) * (y[i] - my);
            double e = y[i] - f(t[i]);
            ssRes += e * e;
        }
        return ssTot == 0 ? (ssRes == 0 ? 1 : 0) : 1 - ssRes / ssTot;
    }

    private static void Check(IReadOnlyList<double> t, IReadOnlyList<double> y)
    {
        ArgumentNullException.ThrowIfNull(t);
        ArgumentNullException.ThrowIfNull(y);
        if (t.Count != y.Count) throw new ArgumentException($"{t.Count} steps but {y.Count} values.", nameof(y));
        if (t.Count < 3) throw new ArgumentException("At least 3 points are needed to fit a schedule.", nameof(t));
        if (t.Concat(y).Any(v => !double.IsFinite(v))) throw new ArgumentException("Steps and values must be finite.", nameof(y));
    }

    private static void RequirePositive(IReadOnlyList<double> v, string name, string family)
    {
        if (v.Any(x => x <= 0)) throw new ArgumentException($"A {family} fit needs positive values; {name} has some ≤ 0.", name);
    }
}
