using System;
using System.IO;
using System.Linq;
using AdaGraft.Lab.Data;
using FluentAssertions;
using Xunit;

namespace AdaGraft.Lab.Tests;

public class CorpusTests
{
    [Fact]
    public void SameSeedSameCorpus()
    {
        var a = TokenCorpus.Generated(seed: 3, trainTokens: 20_000, heldOutTokens: 2_000);
        var b = TokenCorpus.Generated(seed: 3, trainTokens: 20_000, heldOutTokens: 2_000);
        a.Train.Should().Equal(b.Train);
        a.HeldOut.Should().Equal(b.HeldOut);
        a.Description.Should().Be(b.Description);
    }

    [Fact]
    public void DifferentSeedsDiffer()
    {
        var a = TokenCorpus.Generated(seed: 3, trainTokens: 5_000, heldOutTokens: 500);
        var b = TokenCorpus.Generated(seed: 4, trainTokens: 5_000, heldOutTokens: 500);
        a.Train.Should().NotEqual(b.Train);
        a.Train.Should().NotEqual(a.HeldOut.Concat(a.Train).Take(5_000), "held-out text is sampled independently");
    }

    [Fact]
    public void TokensAreInRangeAndSentencesEnd()
    {
        var g = GrammarCorpus.Create(5);
        var tokens = g.Sample(30_000, 1);
        tokens.Should().HaveCount(30_000);
        tokens.Should().OnlyContain(t => t >= 0 && t < g.VocabularySize);
        int longest = 0, run = 0;
        foreach (var t in tokens) {
            run = t == GrammarCorpus.EndOfSentence ? 0 : run + 1;
            longest = Math.Max(longest, run);
        }
        longest.Should().BeLessThanOrEqualTo(g.Options.MaxSentenceLength);
        tokens.Count(t => t == GrammarCorpus.EndOfSentence).Should().BeGreaterThan(30_000 / (g.Options.MaxSentenceLength + 1));
    }

    [Fact]
    public void FrequenciesAreZipfLikeWithRareTokens()
    {
        var tokens = GrammarCorpus.Create(7).Sample(100_000, 1);
        var st = CorpusStatistics.Of(tokens);
        st.ZipfSlope.Should().BeInRange(-2.0, -0.6, "log frequency falls roughly linearly in log rank");
        st.SlopeRSquared.Should().BeGreaterThan(0.85);
        st.Rare.Should().BeGreaterThan(st.Distinct / 10, "a Zipf vocabulary has a long tail of rare tokens");
        var counts = tokens.Where(t => t != 0).GroupBy(t => t).Select(g => g.Count()).OrderByDescending(c => c).ToArray();
        counts[0].Should().BeGreaterThan(20 * counts[counts.Length / 2], "the head is far more frequent than the median token");
    }

    [Fact]
    public void TextFilesAreCharacterLevel()
    {
        var path = Path.Combine(Path.GetTempPath(), "adagraft-text-" + Guid.NewGuid().ToString("N") + ".txt");
        File.WriteAllText(path, string.Concat(Enumerable.Repeat("abc ab a.\n", 200)));
        try {
            var c = TokenCorpus.FromTextFile(path);
            c.VocabularySize.Should().Be(6);
            (c.Train.Length + c.HeldOut.Length).Should().Be(2000);
            c.Train.Length.Should().Be(1800);
        } finally {
            File.Delete(path);
        }
    }

    [Fact]
    public void BadGrammarSettingsAreRejected()
    {
        var act = () => GrammarCorpus.Create(1, new GrammarOptions(VocabularySize: 5, Categories: 8));
        act.Should().Throw<ArgumentOutOfRangeException>().WithMessage("*VocabularySize*");
    }
}
