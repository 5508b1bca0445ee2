using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using AdaGraft.Diagnostics;
using ScottPlot;

namespace AdaGraft.Plotting;

/// <summary>Pictures of recorded step-norm ratios, as in the paper's figures 4 and 7.</summary>
public static class RatioPlots
{
    /// <summary>
    /// Figure 4: the global ratio ‖ΔM‖/‖ΔD‖ against steps, with a fitted schedule drawn over it (if given).
    /// </summary>
    public static void GlobalRatio(IEnumerable<StepNormRecord> records, string path, ScheduleFitResult? fit = null,
        int width = 800, int height = 500, string title = "Global step-norm ratio ‖ΔM‖/‖ΔD‖")
    {
        var g = records.Where(r => r.Tensor == StepNormRecorder.GlobalName).OrderBy(r => r.Step).ToArray();
        if (g.Length == 0) throw new ArgumentException("No global records to plot.", nameof(records));
        var plt = new Plot();
        var xs = g.Select(r => (double)r.Step).ToArray();
        var data = plt.Add.ScatterLine(xs, g.Select(r => r.Ratio).ToArray());
        data.LegendText = "recorded ratio";
        data.LineWidth = 1.5f;
        if (fit is not null) {
            var f = plt.Add.ScatterLine(xs, xs.Select(fit.Evaluate).ToArray());
            f.LegendText = fit.ToString();
            f.LineWidth = 2;
            f.LinePattern = LinePattern.Dashed;
            f.Color = Colors.Black;
        }
        plt.Title(title);
        plt.XLabel("step");
        plt.YLabel("ratio");
        plt.ShowLegend(Alignment.UpperLeft);
        plt.SavePng(path, width, height);
    }

    /// <summary>
    /// Figure 7: per-tensor ratios on a logarithmic axis (labelled in ratio units), one colour per tensor, each named
    /// in the legend with its mean squared ‖ΔM‖; the <paramref name="maxLabelled"/> heaviest tensors get colours (and
    /// are drawn last, on top), the rest are grey under one legend entry. The global ratio is the thick black dashed line.
    /// </summary>
    public static void PerTensorRatios(IEnumerable<StepNormRecord> records, string path, int width = 800, int height = 500,
        string title = "Per-tensor step-norm ratios ‖ΔM‖/‖ΔD‖ at every recorded step (log scale)", int maxLabelled = 10)
    {
        ArgumentNullException.ThrowIfNull(records);
        if (maxLabelled < 0) throw new ArgumentOutOfRangeException(nameof(maxLabelled), maxLabelled, "maxLabelled must be 0 or more.");
        var all = records.ToArray();
        var tensors = all.Where(r => r.Tensor != StepNormRecorder.GlobalName).GroupBy(r => r.Tensor).ToArray();
        if (tensors.Length == 0) throw new ArgumentException("No per-tensor records to plot.", nameof(records));
        var weight = tensors.ToDictionary(t => t.Key, t => t.Average(r => r.MagnitudeNorm * r.MagnitudeNorm));
        var ordered = tensors.OrderByDescending(t => weight[t.Key]).ThenBy(t => t.Key, StringComparer.Ordinal).ToArray();
        var palette = new ScottPlot.Palettes.Category10();
        var plt = new Plot();
        double min = double.PositiveInfinity, max = 0;
        void Track(IEnumerable<double> ys)
        {
            foreach (var y in ys) {
                min = Math.Min(min, y);
                max = Math.Max(max, y);
            }
        }
        bool otherLabelled = false;
        // Grey (unlabelled) tensors first, then the labelled ones lightest to heaviest, so the heaviest is on top.
        for (int i = ordered.Length - 1; i >= 0; i--) {
            var pts = ordered[i].Where(r => r.Ratio > 0 && double.IsFinite(r.Ratio)).OrderBy(r => r.Step).ToArray();
            if (pts.Length == 0) continue;
            Track(pts.Select(r => r.Ratio));
            var line = plt.Add.ScatterLine(pts.Select(r => (double)r.Step).ToArray(), pts.Select(r => Math.Log10(r.Ratio)).ToArray());
            line.LineWidth = 1.5f;
            if (i < maxLabelled) {
                line.Color = palette.GetColor(i);
                line.LegendText = $"{ordered[i].Key} (mean ‖ΔM‖² {LogTicks.Label(double.Parse(weight[ordered[i].Key].ToString("G2", CultureInfo.InvariantCulture), CultureInfo.InvariantCulture))})";
            } else {
                line.Color = Colors.Gray.WithAlpha(0.6);
                if (!otherLabelled) {
                    line.LegendText = $"{ordered.Length - maxLabelled} lighter tensor(s)";
                    otherLabelled = true;
                }
            }
        }
        var global = all.Where(r => r.Tensor == StepNormRecorder.GlobalName && r.Ratio > 0 && double.IsFinite(r.Ratio)).OrderBy(r => r.Step).ToArray();
        if (global.Length > 0) {
            Track(global.Select(r => r.Ratio));
            var gl = plt.Add.ScatterLine(global.Select(r => (double)r.Step).ToArray(), global.Select(r => Math.Log10(r.Ratio)).ToArray());
            gl.Color = Colors.Black;
            gl.LineWidth = 3;
            gl.LinePattern = LinePattern.Dashed;
            gl.LegendText = "global (all tensors)";
        }
        plt.ShowLegend(Alignment.UpperRight);
        if (max > 0) LogTicks.ApplyLeft(plt, min, max);
        plt.Title(title);
        plt.XLabel("step");
        plt.YLabel("ratio ‖ΔM‖/‖ΔD‖ (log scale)");
        plt.SavePng(path, width, height);
    }
}
