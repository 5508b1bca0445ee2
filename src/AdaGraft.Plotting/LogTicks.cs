using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using ScottPlot;
using ScottPlot.TickGenerators;

namespace AdaGraft.Plotting;

/// <summary>
/// A logarithmic axis for ScottPlot 5, which has no log scale of its own: the data are plotted as log10 values and
/// the axis gets ticks at round values in the data's own units (0.1, 0.2, 0.5, 1, 2 … or 3, 4, 5 … or 1e-4, 1e-3 …)
/// with minor ticks between them, so its labels read as losses or ratios, not as logarithms.
/// </summary>
public static class LogTicks
{
    // Mantissas of the major ticks, from coarse to fine; each step's minor ticks are the next finer set.
    private static readonly double[][] Mantissas = {
        new[] { 1.0 },
        new[] { 1.0, 2, 5 },
        new[] { 1.0, 2, 3, 4, 5, 6, 7, 8, 9 },
        Enumerable.Range(2, 18).Select(i => i / 2.0).ToArray(),
        Enumerable.Range(10, 90).Select(i => i / 10.0).ToArray(),
        Enumerable.Range(100, 900).Select(i => i / 100.0).ToArray(),
    };

    /// <summary>
    /// Major ticks (log10 positions and labels in data units) and minor tick positions for data between
    /// <paramref name="min"/> and <paramref name="max"/> (both positive): the coarsest round values that put at least
    /// three major ticks in the range (every k-th decade when the range spans many decades).
    /// </summary>
    public static (double[] Positions, string[] Labels, double[] Minor) For(double min, double max)
    {
        if (!(min > 0) || !double.IsFinite(min)) throw new ArgumentOutOfRangeException(nameof(min), min, "min must be a positive finite value (a log axis has no place for 0 or below).");
        if (!(max >= min) || !double.IsFinite(max)) throw new ArgumentOutOfRangeException(nameof(max), max, "max must be finite and at least min.");
        double lo = Math.Log10(min), hi = Math.Log10(max);
        int d0 = (int)Math.Floor(lo) - 1, d1 = (int)Math.Ceiling(hi) + 1;
        List<double> Values(double[] mantissas, int everyDecade = 1)
        {
            var v = new List<double>();
            for (int d = d0; d <= d1; d++) {
                if (mantissas.Length == 1 && ((d % everyDecade) + everyDecade) % everyDecade != 0) continue;
                foreach (var m in mantissas) {
                    double value = double.Parse((m * Math.Pow(10, d)).ToString("G12", CultureInfo.InvariantCulture), CultureInfo.InvariantCulture);
                    double p = Math.Log10(value);
                    if (p >= lo - 1e-12 && p <= hi + 1e-12) v.Add(value);
                }
            }
            return v;
        }
        int level = Mantissas.Length - 1;
        for (int i = 0; i < Mantissas.Length; i++) {
            if (Values(Mantissas[i]).Count >= 3) {
                level = i;
                break;
            }
        }
        int every = level == 0 ? Math.Max(1, (int)Math.Ceiling((hi - lo) / 9)) : 1;
        var major = Values(Mantissas[level], every);
        if (major.Count == 0) major.Add(min);
        var minor = level == 0
            ? (every > 1 ? Values(Mantissas[0]) : Values(Mantissas[2])).Where(v => !major.Contains(v)).ToList()
            : level + 1 < Mantissas.Length ? Values(Mantissas[level + 1]).Where(v => !major.Contains(v)).ToList() : new List<double>();
        return (major.Select(Math.Log10).ToArray(), major.Select(Label).ToArray(), minor.Select(Math.Log10).ToArray());
    }

    /// <summary>A tick label: plain decimals from 0.001 to 99,999, "2e-5" style outside.</summary>
    public static string Label(double value)
    {
        if (value == 0 || !double.IsFinite(value)) return value.ToString(CultureInfo.InvariantCulture);
        double a = Math.Abs(value);
        if (a >= 1e-3 && a < 1e5) return value.ToString("0.#####", CultureInfo.InvariantCulture);
        int e = (int)Math.Floor(Math.Log10(a));
        double m = value / Math.Pow(10, e);
        return m.ToString("0.##", CultureInfo.InvariantCulture) + "e" + e.ToString(CultureInfo.InvariantCulture);
    }

    /// <summary>
    /// Makes <paramref name="plot"/>'s left axis logarithmic for data (already plotted as log10 values) that lie
    /// between <paramref name="min"/> and <paramref name="max"/>: scales the axes to the data, then fixes the vertical
    /// range to the data with a small margin and puts <see cref="For"/>'s ticks on it. Call it after adding the
    /// plottables.
    /// </summary>
    public static void ApplyLeft(Plot plot, double min, double max)
    {
        ArgumentNullException.ThrowIfNull(plot);
        if (!(min > 0) || !double.IsFinite(min)) throw new ArgumentOutOfRangeException(nameof(min), min, "min must be a positive finite value (a log axis has no place for 0 or below).");
        if (!(max >= min) || !double.IsFinite(max)) throw new ArgumentOutOfRangeException(nameof(max), max, "max must be finite and at least min.");
        double lo = Math.Log10(min), hi = Math.Log10(max), margin = Math.Max((hi - lo) * 0.04, 1e-3);
        var (positions, labels, minor) = For(Math.Pow(10, lo - margin), Math.Pow(10, hi + margin));
        plot.Axes.AutoScale();
        plot.Axes.SetLimitsY(lo - margin, hi + margin);
        var ticks = new NumericManual();
        for (int i = 0; i < positions.Length; i++) ticks.AddMajor(positions[i], labels[i]);
        foreach (var p in minor) ticks.AddMinor(p);
        plot.Axes.Left.TickGenerator = ticks;
    }
}
