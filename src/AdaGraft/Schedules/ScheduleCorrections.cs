using AdaGraft.Diagnostics;

namespace AdaGraft.Schedules;

/// <summary>From a fitted schedule to the correction that <see cref="CorrectedScheduler"/> multiplies on.</summary>
public static class ScheduleCorrections
{
    /// <summary>
    /// The correction of the fit's family, with the fitted parameters: <see cref="LinearCorrection"/> (c0 + c1·t, held
    /// at 0 where the line falls below it, see <see cref="LinearCorrection.Floor"/>), <see cref="PowerCorrection"/>
    /// (a·t^α) or <see cref="ExponentialCorrection"/> (a·e^(b·t)). For t ≥ 1 its factor is
    /// <see cref="ScheduleFitResult.Evaluate"/>(t) (floored at 0 for a line).
    /// </summary>
    /// <exception cref="ArgumentException">A parameter is not finite.</exception>
    public static ILearningRateCorrection ToCorrection(this ScheduleFitResult fit)
    {
        ArgumentNullException.ThrowIfNull(fit);
        if (!double.IsFinite(fit.A) || !double.IsFinite(fit.B))
            throw new ArgumentException($"The fit's parameters must be finite to make a correction; got A = {fit.A}, B = {fit.B}.", nameof(fit));
        return fit.Family switch {
            ScheduleFamily.Linear => new LinearCorrection(fit.A, fit.B) { Floor = 0 },
            ScheduleFamily.PowerLaw => new PowerCorrection(fit.A, fit.B),
            ScheduleFamily.Exponential => new ExponentialCorrection(fit.A, fit.B),
            _ => throw new ArgumentException($"Unknown schedule family {fit.Family}.", nameof(fit)),
        };
    }
}
