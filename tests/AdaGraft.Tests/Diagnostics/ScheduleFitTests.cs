using AdaGraft.Diagnostics;

namespace AdaGraft.Tests.Diagnostics;

/// <summary>Fitting recovers known schedule parameters from noisy synthetic ratio series and picks the right family.</summary>
public class ScheduleFitTests
{
    private static double[] Steps(int n) => Enumerable.Range(1, n).Select(i => (double)i).ToArray();

    /// <summary>Multiplicative noise with 2% standard deviation, from a seeded generator.</summary>
    private static double[] Noisy(double[] t, Func<double, double> f, int seed)
    {
        var rng = new Random(seed);
        return t.Select(x => {
            double u1 = 1 - rng.NextDouble(), u2 = rng.NextDouble();
            double z = Math.Sqrt(-2 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2);
            return f(x) * (1 + 0.02 * z);
        }).ToArray();
    }

    /// <summary>
    /// Fits <paramref name="family"/> to <see cref="Noisy"/> data of <paramref name="f"/> over steps 1 … <paramref name="n"/>:
    /// A and B within their tolerances, R² above <paramref name="minRSquared"/> (when given), and
    /// <see cref="ScheduleFitter.Best"/> picks the family.
    /// </summary>
    private static void ShouldRecover(ScheduleFamily family, int n, Func<double, double> f, int seed,
        (double Value, double Tolerance) a, (double Value, double Tolerance) b, double? minRSquared)
    {
        var t = Steps(n);
        var y = Noisy(t, f, seed);
        var fit = family switch {
            ScheduleFamily.Linear => ScheduleFitter.Linear(t, y),
            ScheduleFamily.PowerLaw => ScheduleFitter.PowerLaw(t, y),
            _ => ScheduleFitter.Exponential(t, y),
        };
        fit.A.Should().BeApproximately(a.Value, a.Tolerance);
        fit.B.Should().BeApproximately(b.Value, b.Tolerance);
        if (minRSquared is double r2) fit.RSquared.Should().BeGreaterThan(r2);
        ScheduleFitter.Best(t, y).Family.Should().Be(family);
    }

    [Fact]
    public void LinearFitRecoversC0AndC1Within2Percent() =>
        ShouldRecover(ScheduleFamily.Linear, 2000, x => 0.3 + 0.002 * x, seed: 1, a: (0.3, 0.02 * 0.3), b: (0.002, 0.02 * 0.002), minRSquared: 0.99);

    [Fact]
    public void PowerLawFitRecoversAlphaWithin002() =>
        ShouldRecover(ScheduleFamily.PowerLaw, 5000, x => 2.0 * Math.Pow(x, -0.27), seed: 2, a: (2.0, 0.05 * 2.0), b: (-0.27, 0.02), minRSquared: 0.9);

    [Fact]
    public void ExponentialFitRecoversRateAndIsPickedForExponentialData() =>
        ShouldRecover(ScheduleFamily.Exponential, 3000, x => 1.5 * Math.Exp(-0.001 * x), seed: 3, a: (1.5, 0.02 * 1.5), b: (-0.001, 0.02 * 0.001), minRSquared: null);

    [Fact]
    public void LineIsExactOnALineAndLosesNoPrecisionAtLargeSteps()
    {
        var (c0, c1, r2) = ScheduleFitter.Line(new[] { 1.0, 2, 3, 4 }, new[] { 3.0, 5, 7, 9 });
        c0.Should().BeApproximately(1, 1e-12);
        c1.Should().BeApproximately(2, 1e-12);
        r2.Should().Be(1);
        var t = Enumerable.Range(0, 100).Select(i => 1e8 + i).ToArray();
        ScheduleFitter.Line(t, t.Select(x => 5 - 3e-3 * (x - 1e8)).ToArray()).slope.Should().BeApproximately(-3e-3, 1e-12);
    }

    [Fact]
    public void LineRejectsBadInputWithTheReason()
    {
        FluentActions.Invoking(() => ScheduleFitter.Line(new[] { 1.0, 2 }, new[] { 1.0 })).Should().Throw<ArgumentException>().WithMessage("*2 points*1*");
        FluentActions.Invoking(() => ScheduleFitter.Line(new[] { 1.0 }, new[] { 1.0 })).Should().Throw<ArgumentException>().WithMessage("*at least 2*");
        FluentActions.Invoking(() => ScheduleFitter.Line(new[] { 1.0, 1 }, new[] { 1.0, 2 })).Should().Throw<ArgumentException>().WithMessage("*All x are equal*");
        FluentActions.Invoking(() => ScheduleFitter.Line(new[] { 1.0, double.PositiveInfinity }, new[] { 1.0, 2 })).Should().Throw<ArgumentException>().WithMessage("*not finite*");
    }

    [Fact]
    public void BadSeriesAreRejectedWithTheReason()
    {
        var ok = new double[] { 1, 2, 3 };
        FluentActions.Invoking(() => ScheduleFitter.Linear(ok, new double[] { 1, 2 })).Should().Throw<ArgumentException>().WithMessage("*3 steps but 2 values*");
        FluentActions.Invoking(() => ScheduleFitter.PowerLaw(ok, new double[] { 1, -2, 3 })).Should().Throw<ArgumentException>().WithMessage("*positive*");
        FluentActions.Invoking(() => ScheduleFitter.Linear(ok, new double[] { 1, double.NaN, 3 })).Should().Throw<ArgumentException>().WithMessage("*finite*");
        ScheduleFitter.All(ok, new double[] { 1, -2, 3 }).Should().ContainSingle().Which.Family.Should().Be(ScheduleFamily.Linear);
    }
}
