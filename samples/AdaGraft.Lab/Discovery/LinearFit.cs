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
        ArgumentNullException.ThrowIfNull(x);
        ArgumentNullException.ThrowIfNull(y);
        if (x.Count != y.Count) throw new ArgumentException($"x has {x.Count} points but y has {y.Count}.", nameof(y));
        if (x.Count < 2) throw new ArgumentException($"A line needs at least 2 points, got {x.Count}.", nameof(x));
        double mx = 0, my = 0;
        for (int i = 0; i < x.Count; i++) {
            if (!double.IsFinite(x[i]) || !double.IsFinite(y[i]))
                throw new ArgumentException($"Point {i} is not finite: ({x[i]}, {y[i]}).", nameof(y));
            mx += x[i];
            my += y[i];
        }
        mx /= x.Count;
        my /= x.Count;
        double sxx = 0, sxy = 0, syy = 0;
        for (int i = 0; i < x.Count; i++) {
            double dx = x[i] - mx, dy = y[i] - my;
            sxx += dx * dx;
            sxy += dx * dy;
            syy += dy * dy;
        }
        if (sxx == 0) throw new ArgumentException("All x are equal: the slope is undetermined.", nameof(x));
        double c1 = sxy / sxx, c0 = my - c1 * mx;
        double ssRes = 0;
        for (int i = 0; i < x.Count; i++) {
            double r = y[i] - (c0 + c1 * x[i]);
            ssRes += r * r;
        }
        double r2 = syy == 0 ? (ssRes == 0 ? 1 : 0) : 1 - ssRes / syy;
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
