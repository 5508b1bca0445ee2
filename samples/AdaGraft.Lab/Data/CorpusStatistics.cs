using System;
using System.Collections.Generic;
using System.Linq;
using AdaGraft.Diagnostics;

namespace AdaGraft.Lab.Data;

/// <summary>Frequency statistics of a token stream: how Zipf-like it is and how many tokens are rare.</summary>
/// <param name="Distinct">Distinct tokens that occur.</param>
/// <param name="Rare">Tokens that occur at least once but at most <paramref name="RareThreshold"/> times.</param>
/// <param name="RareThreshold">The count at or below which a token is rare.</param>
/// <param name="ZipfSlope">Slope of log(frequency) against log(rank) over ranks 1 … <paramref name="SlopeRanks"/>
/// (about −1 for Zipf's law).</param>
/// <param name="SlopeRanks">Ranks used for the slope.</param>
/// <param name="SlopeRSquared">R² of that fit.</param>
public sealed record CorpusStatistics(int Distinct, int Rare, int RareThreshold, double ZipfSlope, int SlopeRanks, double SlopeRSquared)
{
    /// <summary>Computes the statistics of <paramref name="tokens"/> (the end-of-sentence token 0 is left out of the
    /// rank-frequency fit).</summary>
    public static CorpusStatistics Of(IReadOnlyList<int> tokens, int rareThreshold = 5, int slopeRanks = 200)
    {
        ArgumentNullException.ThrowIfNull(tokens);
        var counts = tokens.Where(t => t != GrammarCorpus.EndOfSentence).GroupBy(t => t).Select(g => g.Count()).OrderByDescending(c => c).ToList();
        int n = Math.Min(slopeRanks, counts.Count);
        var (_, slope, rSquared) = n >= 2
            ? ScheduleFitter.Line(Enumerable.Range(1, n).Select(r => Math.Log(r)).ToList(), counts.Take(n).Select(c => Math.Log(c)).ToList())
            : (double.NaN, double.NaN, double.NaN);
        return new CorpusStatistics(counts.Count, counts.Count(c => c <= rareThreshold), rareThreshold, slope, n, rSquared);
    }
}
