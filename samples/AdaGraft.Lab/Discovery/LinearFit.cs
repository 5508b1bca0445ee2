using System;
using System.Collections.Generic;

namespace AdaGraft.Lab.Discovery;

/// <summary>The least-squares line y ≈ c0 + c1·x and its coefficient of determination.</summary>
/// <param name="C0">Intercept.</param>
/// <param name="C1">Slope.</param>
/// <param name="RSquared">1 − SS_res/SS_tot (1 for a perfect fit; 0 when the line explains nothing beyond the mean).</param>
/// <param name="Count">Points used.</param>
public sealed record LinearFit(double C0, double C1, double RSquared, int Count)
{
    /// <summary>c0 + c1·x.</summary>
    public double At(double x) => C0 + C1 * x;

    /// <summary>Fits y ≈ c0 + c1·x by ordinary least squares (centred sums, so large x such as step numbers lose no
    /// precision).</summary>
    /// <exception cref="ArgumentException">Lengths differ, fewer than two points, a non-finite value, or all x equal.</exception>
    public static LinearFit Fit(IReadOnlyList<double> x, IReadOnlyList<double> y)
    {
        var (c0, c1, r2) = AdaGraft.Diagnostics.ScheduleFitter.Line(x, y);
        return new LinearFit(c0, c1, r2, x.Count);
    }

    /// <summary>Fits the finite points of a series indexed by step 0, 1, 2, … (non-finite points are skipped).</summary>
    public static LinearFit FitSeries(IReadOnlyList<double> y, int firstStep = 0)
    {
        ArgumentNullException.ThrowIfNull(y);
        var xs = new List<double>();
        var ys = new List<double>();
        for (int t = Math.Max(0, firstStep); t < y.Count; t++) {
            if (!double.IsFinite(y[t])) continue;
            xs.Add(t);
            ys.Add(y[t]);
        }
        return Fit(xs, ys);
    }
}
