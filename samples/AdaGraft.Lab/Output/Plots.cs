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

    /// <summary>The records with the recorder's default names (p0, p1, …) replaced by the model's parameter names
    /// (<paramref name="names"/>, in parameter order); other names are kept.</summary>
    public static IReadOnlyList<AdaGraft.Diagnostics.StepNormRecord> WithTensorNames(IReadOnlyList<AdaGraft.Diagnostics.StepNormRecord> records, IReadOnlyList<string> names)
    {
        ArgumentNullException.ThrowIfNull(records);
        ArgumentNullException.ThrowIfNull(names);
        string Name(string t) =>
            t.Length > 1 && t[0] == 'p' && int.TryParse(t.AsSpan(1), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int i) && i < names.Count
                ? names[i] : t;
        return records.Select(r => r with { Tensor = Name(r.Tensor) }).ToList();
    }

    /// <summary>Marker of each D (drawn on a few points of each curve, so that curves that lie on top of each other
    /// can still be told apart).</summary>
    public static MarkerShape MarkerOf(BaseOptimizer d) => d switch {
        BaseOptimizer.Sgd => MarkerShape.FilledSquare,
        BaseOptimizer.Adam => MarkerShape.OpenTriangleUp,
        _ => MarkerShape.OpenCircle,
    };

    /// <summary>How one curve is drawn.</summary>
    private sealed record CurveStyle(Color Color, LinePattern Pattern, float Width, MarkerShape Marker, string Legend);

    /// <summary>
    /// Adds curves of positive values (losses) on a log axis labelled in the values' own units: each curve a line in
    /// its colour and pattern plus a dozen markers (staggered between curves so they do not coincide), in the order
    /// given (later ones on top), with one legend entry per curve showing line and marker.
    /// </summary>
    private static void AddLogCurves(Plot plot, IReadOnlyList<(double[] X, double[] Y, CurveStyle Style)> curves)
    {
        double min = double.PositiveInfinity, max = 0;
        for (int j = 0; j < curves.Count; j++) {
            var (x, y, style) = curves[j];
            if (x.Length == 0) continue;
            var ly = y.Select(v => Math.Log10(Math.Max(v, 1e-12))).ToArray();
            min = Math.Min(min, y.Min(v => Math.Max(v, 1e-12)));
            max = Math.Max(max, y.Max());
            var line = plot.Add.ScatterLine(x, ly, style.Color);
            line.LinePattern = style.Pattern;
            line.LineWidth = style.Width;
            const int markers = 12;
            int every = Math.Max(1, x.Length / markers);
            int offset = every * j / Math.Max(1, curves.Count);
            var idx = Enumerable.Range(0, x.Length).Where(i => i % every == offset % every).ToArray();
            var pts = plot.Add.ScatterPoints(idx.Select(i => x[i]).ToArray(), idx.Select(i => ly[i]).ToArray(), style.Color);
            pts.MarkerShape = style.Marker;
            pts.MarkerSize = 8;
            plot.Legend.ManualItems.Add(new LegendItem {
                LabelText = style.Legend,
                LineColor = style.Color,
                LinePattern = style.Pattern,
                LineWidth = style.Width,
                MarkerShape = style.Marker,
                MarkerColor = style.Color,
                MarkerSize = 8,
            });
        }
        if (max > 0) AdaGraft.Plotting.LogTicks.ApplyLeft(plot, min, max);
    }

    /// <summary>Figure 1's layout: one panel per task, training loss of every cell (seed 0, moving average) on a log
    /// axis labelled in loss units; colour = M, line style and marker = D, the base optimizers (diagonal) thicker.</summary>
    public static void GraftingCurves(string path, IReadOnlyList<TableResult> tables, int width = 1400, int height = 560)
    {
        ArgumentNullException.ThrowIfNull(tables);
        // The diagonal (thick) first, so the thinner grafts stay visible over it.
        LossPanels(path, tables.Select(table => (table.Task, table.Steps, "colour = M, line/marker = D",
            (IReadOnlyList<(IReadOnlyList<double>, CurveStyle)>)table.Cells.OrderBy(c => c.M == c.D ? 0 : 1).Select(cell =>
                ((IReadOnlyList<double>)cell.Runs[0].Losses, new CurveStyle(ColorOf(cell.M), PatternOf(cell.D), cell.M == cell.D ? 3f : 1.5f, MarkerOf(cell.D),
                    $"M={BaseOptimizers.Name(cell.M)}, D={BaseOptimizers.Name(cell.D)}"))).ToList())).ToList(), width, height);
    }

    /// <summary>The preconditioner comparison: one panel per task, training loss of each optimizer (seed 0, moving
    /// average) on a log axis in loss units; Adam thick black, the Shampoo family blue, SOAP green, the Muon family red
    /// and orange, each with its own line style and marker.</summary>
    public static void PreconditionerCurves(string path, PreconditionersResult r, int width = 1400, int height = 560)
    {
        ArgumentNullException.ThrowIfNull(r);
        var styles = new Dictionary<string, (string Hex, LinePattern Pattern, float Width, MarkerShape Marker)> {
            [Preconditioners.Adam] = ("#000000", LinePattern.Solid, 3.5f, MarkerShape.FilledCircle),
            [Preconditioners.Shampoo] = ("#9ecae1", LinePattern.Dotted, 2f, MarkerShape.Cross),
            [Preconditioners.ShampooAdam] = ("#1f77b4", LinePattern.Solid, 2f, MarkerShape.OpenTriangleUp),
            [Preconditioners.ShampooSgd] = ("#17becf", LinePattern.Dashed, 2f, MarkerShape.FilledSquare),
            [Preconditioners.Soap] = ("#2ca02c", LinePattern.Solid, 2.5f, MarkerShape.OpenDiamond),
            [Preconditioners.MuonOriginal] = ("#ff7f0e", LinePattern.Dotted, 2f, MarkerShape.OpenSquare),
            [Preconditioners.MuonMatchRms] = ("#d62728", LinePattern.Dashed, 2f, MarkerShape.OpenCircle),
            [Preconditioners.MuonAdam] = ("#8c564b", LinePattern.Solid, 1.5f, MarkerShape.FilledTriangleDown),
        };
        LossPanels(path, r.Tables.Select(t => (t.Task, t.Steps, "Adam, Shampoo, SOAP, Muon",
            (IReadOnlyList<(IReadOnlyList<double>, CurveStyle)>)t.Cells.Select(c => {
                var (hex, pattern, w, marker) = styles[c.Optimizer];
                return ((IReadOnlyList<double>)c.Runs[0].Losses, new CurveStyle(Color.FromHex(hex), pattern, w, marker, $"{c.Optimizer}: final {c.TrainLoss.Format("F4")}"));
            }).ToList())).ToList(), width, height);
    }

    /// <summary>One panel per task (side by side, <paramref name="width"/> per two panels): each curve the moving average
    /// of a run's losses over 1/40 of the steps, on a log axis in loss units, with its legend.</summary>
    private static void LossPanels(string path, IReadOnlyList<(string Task, int Steps, string What, IReadOnlyList<(IReadOnlyList<double> Losses, CurveStyle Style)> Curves)> panels,
        int width, int height)
    {
        if (panels.Count == 0) return;
        var mp = new Multiplot();
        for (int i = 0; i < panels.Count; i++) {
            var plot = i == 0 ? mp.Subplots.GetPlot(0) : new Plot();
            if (i > 0) mp.Subplots.Add(plot);
            var (task, steps, what, curves) = panels[i];
            int window = Math.Max(1, steps / 40);
            AddLogCurves(plot, curves.Select(c => {
                var (x, y) = Smooth(c.Losses, window);
                return (x, y, c.Style);
            }).ToList());
            plot.Title($"{task}: training loss (seed 0); {what}");
            plot.XLabel("step");
            plot.YLabel($"training loss, log scale (moving average of {window} steps)");
            plot.ShowLegend(Alignment.UpperRight);
        }
        mp.Layout = new ScottPlot.MultiplotLayouts.Columns();
        Save(mp, path, width * panels.Count / 2, height);
    }

    /// <summary>Figure 4: the correction c(t) (global ratio ÷ AdaGrad's scheduled learning rate) at every step of the
    /// global graft and the fitted line.</summary>
    public static void DiscoveryRatio(string path, DiscoveryResult r, int width = 900, int height = 560)
    {
        ArgumentNullException.ThrowIfNull(r);
        var plot = new Plot();
        var xs = Enumerable.Range(0, r.Correction.Count).Select(t => (double)t).ToArray();
        // The fitted line first, the points over it (a point on the line stays visible).
        var fit = plot.Add.ScatterLine(new[] { 0.0, xs.Length - 1.0 }, new[] { r.FitAt(0), r.FitAt(xs.Length - 1) }, Color.FromHex("#d62728").WithAlpha(0.8));
        fit.LineWidth = 2.5f;
        fit.LegendText = $"least-squares line c0 + c1·t: c0 = {r.Fit.A:G3}, c1 = {r.Fit.B:G3}, R² = {r.Fit.RSquared:F3}";
        var pts = plot.Add.ScatterPoints(xs, r.Correction.ToArray(), Color.FromHex("#404040"));
        pts.MarkerSize = 4;
        pts.LegendText = $"c(t) = ‖ΔM‖/‖ΔD‖ ÷ (lr_AdaGrad · schedule(t)), all {xs.Length} steps";
        plot.Title($"{r.Task}: correction c(t) from global SGD#AdaGrad at every step, with its linear fit");
        plot.XLabel("step t");
        plot.YLabel("c(t): factor on AdaGrad's scheduled learning rate");
        plot.ShowLegend(Alignment.UpperLeft);
        plot.SavePng(path, width, height);
    }

    /// <summary>Figure 3: training curves of SGD, AdaGrad, the global graft and corrected AdaGrad (log axis in loss units).</summary>
    public static void DiscoveryCurves(string path, DiscoveryResult r, int width = 900, int height = 560)
    {
        ArgumentNullException.ThrowIfNull(r);
        var plot = new Plot();
        int window = Math.Max(1, r.Correction.Count / 40);
        (double[], double[], CurveStyle) Curve(RunResult run, Color c, LinePattern p, float w, MarkerShape m)
        {
            var (x, y) = Smooth(run.Losses, window);
            return (x, y, new CurveStyle(c, p, w, m, $"{run.Name}: final train loss {run.Final.TrainLoss:F4}"));
        }
        AddLogCurves(plot, new[] {
            Curve(r.Sgd[0], ColorOf(BaseOptimizer.Sgd), LinePattern.Solid, 3f, MarkerShape.FilledSquare),
            Curve(r.AdaGrad[0], ColorOf(BaseOptimizer.AdaGrad), LinePattern.Solid, 2.5f, MarkerShape.OpenCircle),
            Curve(r.Graft, Color.FromHex("#9467bd"), LinePattern.Dashed, 2f, MarkerShape.OpenTriangleUp),
            Curve(r.Corrected[0], Color.FromHex("#ff7f0e"), LinePattern.Dotted, 2f, MarkerShape.OpenDiamond),
        });
        plot.Title($"{r.Task}: training loss of SGD, AdaGrad, graft, corrected AdaGrad (seed 0)");
        plot.XLabel("step");
        plot.YLabel($"training loss, log scale (moving average of {window} steps)");
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

    /// <summary>Section 4.1: training loss with AdaGrad's step norms and four directions (seed 0), one panel, log axis
    /// in loss units; each direction its own colour, line style and marker, thick lines first so that none hides another.</summary>
    public static void ZooCurves(string path, ZooResult r, int width = 900, int height = 560)
    {
        ArgumentNullException.ThrowIfNull(r);
        var plot = new Plot();
        var colors = new[] { "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b" };
        var patterns = new[] { LinePattern.Solid, LinePattern.Dashed, LinePattern.Dotted, LinePattern.DenselyDashed };
        var markers = new[] { MarkerShape.OpenTriangleUp, MarkerShape.OpenCircle, MarkerShape.OpenSquare, MarkerShape.Cross };
        var widths = new[] { 4f, 3f, 2.5f, 2f };
        int window = Math.Max(1, r.Steps / 40);
        var curves = r.Cells.Select((cell, i) => {
            var run = cell.Runs[0];
            var (x, y) = Smooth(run.Losses, window);
            return (x, y, new CurveStyle(Color.FromHex(colors[i % colors.Length]), patterns[i % patterns.Length], widths[i % widths.Length],
                markers[i % markers.Length], $"AdaGrad#{cell.Direction}: final {run.Final.TrainLoss:F4}"));
        }).ToList();
        AddLogCurves(plot, curves);
        plot.Title($"{r.Task}: training loss, M = AdaGrad, four directions D (section 4.1, seed 0)");
        plot.XLabel("step");
        plot.YLabel($"training loss, log scale (moving average of {window} steps)");
        plot.ShowLegend(Alignment.UpperRight);
        plot.SavePng(path, width, height);
    }
}
