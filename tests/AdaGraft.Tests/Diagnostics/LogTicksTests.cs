using System.Globalization;
using AdaGraft.Plotting;

namespace AdaGraft.Tests.Diagnostics;

/// <summary>The log axis of the plots: ticks at round values in data units, placed at their log10.</summary>
public class LogTicksTests
{
    private static void ShouldBeConsistent(double min, double max, int atLeast = 3)
    {
        var (positions, labels, minor) = LogTicks.For(min, max);
        positions.Should().HaveCount(labels.Length);
        positions.Length.Should().BeGreaterThanOrEqualTo(atLeast, "a log axis needs labelled values");
        for (int i = 0; i < positions.Length; i++) {
            double value = double.Parse(labels[i], NumberStyles.Float, CultureInfo.InvariantCulture);
            positions[i].Should().BeApproximately(Math.Log10(value), 1e-12, $"label '{labels[i]}' sits at its own log10");
            positions[i].Should().BeInRange(Math.Log10(min) - 1e-12, Math.Log10(max) + 1e-12);
        }
        positions.Should().BeInAscendingOrder();
        minor.Should().NotIntersectWith(positions);
    }

    [Fact]
    public void LossesBetweenSevenTenthsAndTwoGetDecimalLabels()
    {
        var (_, labels, minor) = LogTicks.For(0.69, 2.4);
        labels.Should().Equal("0.7", "0.8", "0.9", "1", "2");
        minor.Should().NotBeEmpty();
        ShouldBeConsistent(0.69, 2.4);
    }

    [Fact]
    public void ANarrowRangeGetsHalfSteps()
    {
        LogTicks.For(2.9, 4.1).Labels.Should().Equal("3", "3.5", "4");
        ShouldBeConsistent(2.9, 4.1);
    }

    [Fact]
    public void AWideRangeGetsDecades()
    {
        LogTicks.For(2e-6, 300).Labels.Should().Equal("1e-5", "1e-4", "0.001", "0.01", "0.1", "1", "10", "100");
        ShouldBeConsistent(2e-6, 300);
        var (positions, _, minor) = LogTicks.For(1e-30, 1e30);
        positions.Length.Should().BeInRange(3, 9, "every k-th decade over sixty decades");
        minor.Should().NotBeEmpty();
    }

    [Theory]
    [InlineData(3e-7, 5e-7)]
    [InlineData(0.05, 50000)]
    [InlineData(1.5, 1.9)]
    public void AnyPositiveRangeGetsConsistentTicks(double min, double max) => ShouldBeConsistent(min, max);

    [Theory]
    [InlineData(0.1, 0.1)]
    [InlineData(1.234, 1.2345)]
    public void ADegenerateRangeStillGetsALabel(double min, double max) => ShouldBeConsistent(min, max, atLeast: 1);

    [Fact]
    public void NonPositiveOrReversedRangesAreRejectedByName()
    {
        FluentActions.Invoking(() => LogTicks.For(0, 1)).Should().Throw<ArgumentOutOfRangeException>().Which.ParamName.Should().Be("min");
        FluentActions.Invoking(() => LogTicks.For(2, 1)).Should().Throw<ArgumentOutOfRangeException>().Which.ParamName.Should().Be("max");
    }
}
