using AdaGraft.Diagnostics;

namespace AdaGraft.Schedules;

/// <summary>A learning-rate correction c(t), multiplied on top of a schedule; t is the 1-based optimizer step.</summary>
public interface ILearningRateCorrection
{
    /// <summary>The factor for step <paramref name="t"/> (t ≥ 1).</summary>
    double Factor(long t);
}

/// <summary><c>c0 + c1·t</c>: the linear correction the paper discovers for AdaGrad (section 3.4).</summary>
public sealed record LinearCorrection(double C0, double C1) : ILearningRateCorrection
{
    /// <summary>
    /// The least factor: <c>max(c0 + c1·t, Floor)</c>. Default −∞ (the line as it is; a negative factor makes
    /// <see cref="CorrectedScheduler"/> raise). A fitted line's <see cref="ScheduleCorrections.ToCorrection"/> sets 0,
    /// so that a falling line extrapolated past its zero holds the rate at 0 instead.
    /// </summary>
    public double Floor { get; init; } = double.NegativeInfinity;

    /// <inheritdoc />
    public double Factor(long t) => Math.Max(C0 + C1 * t, Floor);
}

/// <summary><c>a·e^(b·t)</c>: an exponential correction (e.g. a fitted decay, b &lt; 0).</summary>
public sealed record ExponentialCorrection(double A, double B) : ILearningRateCorrection
{
    /// <inheritdoc />
    public double Factor(long t) => A * Math.Exp(B * t);
}

/// <summary><c>a·t^α</c>: a power-law correction (section 3.3, α ≈ −0.27 in the translation run).</summary>
public sealed record PowerCorrection(double A, double Alpha) : ILearningRateCorrection
{
    /// <inheritdoc />
    public double Factor(long t) => A * Math.Pow(Math.Max(t, 1), Alpha);
}

/// <summary>A per-step table of factors (e.g. a recorded ratio series); beyond its end the last value holds.</summary>
public sealed class TabulatedCorrection : ILearningRateCorrection
{
    private readonly double[] _values;

    /// <summary>Factors for steps 1, 2, …</summary>
    public TabulatedCorrection(IEnumerable<double> values)
    {
        ArgumentNullException.ThrowIfNull(values);
        _values = values.ToArray();
        if (_values.Length == 0) throw new ArgumentException("The table is empty.", nameof(values));
        if (_values.Any(v => !double.IsFinite(v) || v < 0)) throw new ArgumentException("Factors must be finite and ≥ 0.", nameof(values));
    }

    /// <summary>From recorded norms: the ratio of <paramref name="tensor"/> (default global) at each recorded step,
    /// linearly interpolated between recorded steps (a recorder with a stride skips steps).</summary>
    public static TabulatedCorrection FromRecords(IEnumerable<StepNormRecord> records, string tensor = StepNormRecorder.GlobalName)
    {
        var pts = records.Where(r => r.Tensor == tensor).OrderBy(r => r.Step).ToArray();
        if (pts.Length == 0) throw new ArgumentException($"No records for tensor '{tensor}'.", nameof(tensor));
        long last = pts[^1].Step;
        var values = new double[last];
        int j = 0;
        for (long t = 1; t <= last; t++) {
            while (j + 1 < pts.Length && pts[j + 1].Step <= t) j++;
            var a = pts[j];
            if (t <= a.Step || j + 1 >= pts.Length) {
                values[t - 1] = a.Ratio;
                continue;
            }
            var b = pts[j + 1];
            double w = (double)(t - a.Step) / (b.Step - a.Step);
            values[t - 1] = a.Ratio + w * (b.Ratio - a.Ratio);
        }
        return new TabulatedCorrection(values);
    }

    /// <inheritdoc />
    public double Factor(long t) => _values[Math.Clamp(t, 1, _values.Length) - 1];
}

/// <summary>
/// Adam's bias correction seen as a learning-rate warmup (paper section 5.2, figure 8): with it, the RMSprop form with
/// Adam's (1−β) scaling (no bias correction) takes exactly Adam's steps.
/// </summary>
public sealed record AdamBiasCorrectionWarmup(double Beta1 = 0.9, double Beta2 = 0.999) : ILearningRateCorrection
{
    /// <summary><c>√(1−β2^t) / (1−β1^t)</c>: the factor Adam's bias correction puts on its learning rate at step t.</summary>
    public static double Curve(long t, double beta1, double beta2)
    {
        if (t < 1) throw new ArgumentOutOfRangeException(nameof(t), t, "Steps are counted from 1.");
        return Math.Sqrt(1 - Math.Pow(beta2, t)) / (1 - Math.Pow(beta1, t));
    }

    /// <inheritdoc />
    public double Factor(long t) => Curve(t, Beta1, Beta2);
}

/// <summary>The product of several corrections.</summary>
public sealed record ProductCorrection(IReadOnlyList<ILearningRateCorrection> Parts) : ILearningRateCorrection
{
    /// <inheritdoc />
    public double Factor(long t) => Parts.Aggregate(1.0, (acc, c) => acc * c.Factor(t));
}
