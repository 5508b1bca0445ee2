using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using AdaGraft.Lab.Experiments;
using AdaGraft.Lab.Training;
using ScottPlot;
using SkiaSharp;

namespace AdaGraft.Lab.Output;

/// <summary>The lab's figures (ScottPlot 5), saved as PNG.</summary>
public static class Plots
{
    /// <summary>Colour of each M (figure 1: curves coloured by the magnitude optimizer).</summary>
    public static Color ColorOf(BaseOptimizer m) => m switch {
        BaseOptimizer.Sgd => Color.FromHex("#1f77b4"),
        BaseOptimizer.Adam => Color.FromHex("#2ca02c"),
        _ => Color.FromHex("#d62728"),
    };

    /// <summary>Line style of each D.</summary>
    public static LinePattern PatternOf(BaseOptimizer d) => d switch {
        BaseOptimizer.Sgd => LinePattern.Solid,
        BaseOptimizer.Adam => LinePattern.Dashed,
        _ => LinePattern.Dotted,
    };

    /// <summary>A moving average over <paramref name="window"/> steps (shorter at the start), skipping non-finite values.</summary>
    public static (double[] X, double[] Y) Smooth(IReadOnlyList<double> values, int window)
    {
        ArgumentNullException.ThrowIfNull(values);
        window = Math.Max(1, window);
        var xs = new List<double>();
        var ys = new List<double>();
        double sum = 0;
        var q = new Queue<double>();
        for (int t = 0; t < values.Count; t++) {
            if (!double.IsFinite(values[t])) break;
            q.Enqueue(values[t]);
            sum += values[t];
            if (q.Count > window) sum -= q.Dequeue();
            xs.Add(t + 1);
            ys.Add(sum / q.Count);
        }
        return (xs.ToArray(), ys.ToArray());
    }

    /// <summary>Figure 1's layout: one panel per task, training loss of every cell (seed 0), coloured by M, line
    /// style by D, log-scaled loss axis.</summary>
    public static void GraftingCurves(string path, IReadOnlyList<TableResult> tables, int width = 1400, int height = 560)
    {
        ArgumentNullException.ThrowIfNull(tables);
        if (tables.Count == 0) return;
        var mp = new Multiplot();
        for (int i = 0; i < tables.Count; i++) {
            var plot = i == 0 ? mp.Subplots.GetPlot(0) : new Plot();
            if (i > 0) mp.Subplots.Add(plot);
            var table = tables[i];
            int window = Math.Max(1, table.Steps / 40);
            foreach (var cell in table.Cells) {
                var run = cell.Runs[0];
                var (x, y) = Smooth(run.Losses, window);
                if (x.Length == 0) continue;
                var s = plot.Add.ScatterLine(x, y.Select(v => Math.Log10(Math.Max(v, 1e-12))).ToArray(), ColorOf(cell.M));
                s.LinePattern = PatternOf(cell.D);
                s.LineWidth = cell.M == cell.D ? 2.5f : 1.6f;
                s.LegendText = $"M={BaseOptimizers.Name(cell.M)}, D={BaseOptimizers.Name(cell.D)}";
            }
            plot.Title($"{table.Task}: colour = M, line style = D");
            plot.XLabel("step");
            plot.YLabel($"log10 training loss (moving average of {window} steps)");
            plot.ShowLegend(Alignment.UpperRight);
        }
        mp.Layout = new ScottPlot.MultiplotLayouts.Columns();
        Save(mp, path, width * tables.Count / 2, height);
    }

    /// <summary>Figure 4: the recorded correction (global ratio / AdaGrad's scheduled learning rate) per step and the
    /// fitted line.</summary>
    public static void DiscoveryRatio(string path, DiscoveryResult r, int width = 900, int height = 560)
    {
        ArgumentNullException.ThrowIfNull(r);
        var plot = new Plot();
        var xs = Enumerable.Range(0, r.Correction.Count).Select(t => (double)t).ToArray();
        var pts = plot.Add.ScatterPoints(xs, r.Correction.ToArray(), Color.FromHex("#7f7f7f"));
        pts.MarkerSize = 3;
        pts.LegendText = "‖ΔM‖/‖ΔD‖ ÷ (lr_AdaGrad · schedule(t))";
        var fit = plot.Add.ScatterLine(new[] { 0.0, xs.Length - 1.0 }, new[] { r.FitAt(0), r.FitAt(xs.Length - 1) }, Color.FromHex("#d62728"));
        fit.LineWidth = 2.5f;
        fit.LegendText = $"fit c0 + c1·t: c0 = {r.Fit.A:G3}, c1 = {r.Fit.B:G3}, R² = {r.Fit.RSquared:F3}";
        plot.Title($"{r.Task}: global grafting SGD#AdaGrad, step-norm ratio (read every {r.ReadEvery} steps)");
        plot.XLabel("step t");
        plot.YLabel("implied correction of AdaGrad's learning rate");
        plot.ShowLegend(Alignment.UpperLeft);
        plot.SavePng(path, width, height);
    }

    /// <summary>Figure 3: training curves of SGD, AdaGrad, the global graft and corrected AdaGrad.</summary>
    public static void DiscoveryCurves(string path, DiscoveryResult r, int width = 900, int height = 560)
    {
        ArgumentNullException.ThrowIfNull(r);
        var plot = new Plot();
        int window = Math.Max(1, r.Correction.Count / 40);
        void Add(RunResult run, Color c, LinePattern p)
        {
            var (x, y) = Smooth(run.Losses, window);
            if (x.Length == 0) return;
            var s = plot.Add.ScatterLine(x, y.Select(v => Math.Log10(Math.Max(v, 1e-12))).ToArray(), c);
            s.LinePattern = p;
            s.LineWidth = 2;
            s.LegendText = $"{run.Name}: final train loss {run.Final.TrainLoss:F4}";
        }
        Add(r.Sgd[0], ColorOf(BaseOptimizer.Sgd), LinePattern.Solid);
        Add(r.AdaGrad[0], ColorOf(BaseOptimizer.AdaGrad), LinePattern.Solid);
        Add(r.Graft, Color.FromHex("#9467bd"), LinePattern.Dashed);
        Add(r.Corrected[0], Color.FromHex("#ff7f0e"), LinePattern.Solid);
        plot.Title($"{r.Task}: AdaGrad with the discovered correction (seed 0, moving average of {window} steps)");
        plot.XLabel("step");
        plot.YLabel("log10 training loss");
        plot.ShowLegend(Alignment.UpperRight);
        plot.SavePng(path, width, height);
    }

    private static void Save(Multiplot mp, string path, int width, int height)
    {
        using var surface = SKSurface.Create(new SKImageInfo(width, height));
        surface.Canvas.Clear(SKColors.White);
        mp.Render(surface.Canvas, new PixelRect(0, width, height, 0));
        using var image = surface.Snapshot();
        using var data = image.Encode(SKEncodedImageFormat.Png, 100);
        using var file = File.Create(path);
        data.SaveTo(file);
    }

    /// <summary>Section 4.1: AdaGrad's norms with four directions, seed 0, one panel.</summary>
    public static void ZooCurves(string path, ZooResult r, int width = 900, int height = 560)
    {
        ArgumentNullException.ThrowIfNull(r);
        var plot = new Plot();
        var colors = new[] { "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b" };
        int window = Math.Max(1, r.Steps / 40);
        for (int i = 0; i < r.Cells.Count; i++) {
            var run = r.Cells[i].Runs[0];
            var (x, y) = Smooth(run.Losses, window);
            if (x.Length == 0) continue;
            var s = plot.Add.ScatterLine(x, y.Select(v => Math.Log10(Math.Max(v, 1e-12))).ToArray(), Color.FromHex(colors[i % colors.Length]));
            s.LineWidth = 2;
            s.LegendText = $"AdaGrad#{r.Cells[i].Direction}: final {run.Final.TrainLoss:F4}";
        }
        plot.Title($"{r.Task}: M = AdaGrad, D varies (section 4.1; seed 0, moving average of {window} steps)");
        plot.XLabel("step");
        plot.YLabel("log10 training loss");
        plot.ShowLegend(Alignment.UpperRight);
        plot.SavePng(path, width, height);
    }
}
