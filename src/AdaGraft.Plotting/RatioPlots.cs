using System;
using System.Collections.Generic;
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
    /// Figure 7: per-tensor ratios on a logarithmic axis, each curve shaded by its tensor's mean squared ‖ΔM‖
    /// (darkest = largest), with the global ratio in red.
    /// </summary>
    public static void PerTensorRatios(IEnumerable<StepNormRecord> records, string path, int width = 800, int height = 500,
        string title = "Per-tensor step-norm ratios (log scale; darker = larger mean ‖ΔM‖²)")
    {
        var all = records.ToArray();
        var tensors = all.Where(r => r.Tensor != StepNormRecorder.GlobalName).GroupBy(r => r.Tensor).ToArray();
        if (tensors.Length == 0) throw new ArgumentException("No per-tensor records to plot.", nameof(records));
        var weight = tensors.ToDictionary(t => t.Key, t => t.Average(r => r.MagnitudeNorm * r.MagnitudeNorm));
        double max = weight.Values.Max();
        var plt = new Plot();
        foreach (var t in tensors.OrderBy(t => weight[t.Key])) {
            var pts = t.Where(r => r.Ratio > 0).OrderBy(r => r.Step).ToArray();
            if (pts.Length == 0) continue;
            var line = plt.Add.ScatterLine(pts.Select(r => (double)r.Step).ToArray(), pts.Select(r => Math.Log10(r.Ratio)).ToArray());
            double shade = max > 0 ? 0.15 + 0.85 * weight[t.Key] / max : 1;
            line.Color = Colors.Black.WithAlpha(shade);
            line.LineWidth = 1.2f;
        }
        var global = all.Where(r => r.Tensor == StepNormRecorder.GlobalName && r.Ratio > 0).OrderBy(r => r.Step).ToArray();
        if (global.Length > 0) {
            var gl = plt.Add.ScatterLine(global.Select(r => (double)r.Step).ToArray(), global.Select(r => Math.Log10(r.Ratio)).ToArray());
            gl.Color = Colors.Red;
            gl.LineWidth = 2;
            gl.LegendText = "global";
            plt.ShowLegend(Alignment.UpperRight);
        }
        var ticks = new ScottPlot.TickGenerators.NumericAutomatic {
            MinorTickGenerator = new ScottPlot.TickGenerators.LogMinorTickGenerator(),
            IntegerTicksOnly = true,
            LabelFormatter = y => $"1e{y:0}",
        };
        plt.Axes.Left.TickGenerator = ticks;
        plt.Title(title);
        plt.XLabel("step");
        plt.YLabel("ratio ‖ΔM‖/‖ΔD‖");
        plt.SavePng(path, width, height);
    }
}
