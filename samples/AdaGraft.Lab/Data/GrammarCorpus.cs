using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text;

namespace AdaGraft.Lab.Data;

/// <summary>Settings of the random probabilistic grammar.</summary>
/// <param name="VocabularySize">Tokens including the end-of-sentence token 0.</param>
/// <param name="Categories">Word classes (pre-terminals); each owns a disjoint slice of the vocabulary.</param>
/// <param name="NonTerminals">Non-terminals; 0 is the sentence symbol. Non-terminal i expands only into word classes
/// and non-terminals j &gt; i, so every derivation terminates.</param>
/// <param name="ZipfExponent">s in p(k-th word of a class | class) ∝ k^−s.</param>
/// <param name="MaxSentenceLength">Longer sentences are cut (then closed by the end-of-sentence token).</param>
public sealed record GrammarOptions(
    int VocabularySize = 1000,
    int Categories = 16,
    int NonTerminals = 8,
    double ZipfExponent = 1.1,
    int MaxSentenceLength = 40)
{
    /// <summary>Throws on settings that cannot make a grammar.</summary>
    public void Validate()
    {
        if (Categories < 1) throw new ArgumentOutOfRangeException(nameof(Categories), Categories, "At least one word class.");
        if (VocabularySize < Categories + 1) throw new ArgumentOutOfRangeException(nameof(VocabularySize), VocabularySize, "Need at least one word per class plus the end-of-sentence token.");
        if (NonTerminals < 1) throw new ArgumentOutOfRangeException(nameof(NonTerminals), NonTerminals, "At least one non-terminal.");
        if (!(ZipfExponent > 0)) throw new ArgumentOutOfRangeException(nameof(ZipfExponent), ZipfExponent, "Zipf exponent must be positive.");
        if (MaxSentenceLength < 1) throw new ArgumentOutOfRangeException(nameof(MaxSentenceLength), MaxSentenceLength, "Sentences need at least one word.");
    }
}

/// <summary>
/// A random probabilistic context-free grammar over a Zipf-distributed vocabulary, made deterministically from a
/// seed. Token 0 ends each sentence; every word w (1 ≤ w &lt; V) belongs to one word class (classes have random,
/// skewed sizes); a class emits its k-th word with probability ∝ k^−s, so within a class and overall a few words are
/// common and many are rare. The non-terminals' productions (1–3 symbols each, random probabilities) give the sequences structure an
/// LSTM can learn.
/// </summary>
public sealed class GrammarCorpus
{
    /// <summary>The end-of-sentence token.</summary>
    public const int EndOfSentence = 0;

    private readonly int[][] _classWords;          // words of each class
    private readonly double[][] _classCumulative;  // cumulative emission probabilities per class
    private readonly Symbol[][][] _productions;    // per non-terminal: productions (sequences of symbols)
    private readonly double[][] _productionCumulative;

    private readonly record struct Symbol(bool IsClass, int Index);

    private GrammarCorpus(GrammarOptions options, int seed, int[][] classWords, double[][] classCumulative, Symbol[][][] productions, double[][] productionCumulative)
    {
        Options = options;
        Seed = seed;
        _classWords = classWords;
        _classCumulative = classCumulative;
        _productions = productions;
        _productionCumulative = productionCumulative;
    }

    /// <summary>The settings.</summary>
    public GrammarOptions Options { get; }

    /// <summary>The seed the grammar was made from.</summary>
    public int Seed { get; }

    /// <summary>Number of tokens (including end of sentence).</summary>
    public int VocabularySize => Options.VocabularySize;

    /// <summary>Makes the grammar of <paramref name="seed"/>.</summary>
    public static GrammarCorpus Create(int seed, GrammarOptions? options = null)
    {
        options ??= new GrammarOptions();
        options.Validate();
        var rng = new Random(seed);
        int v = options.VocabularySize, c = options.Categories;

        // Words 1..V-1 to classes: every class gets one word first, the rest at random with skewed class sizes.
        var classWeights = Enumerable.Range(0, c).Select(_ => Math.Pow(rng.NextDouble() + 0.05, 2)).ToArray();
        var members = Enumerable.Range(0, c).Select(_ => new List<int>()).ToArray();
        var words = Enumerable.Range(1, v - 1).ToArray();
        rng.Shuffle(words);
        for (int i = 0; i < c; i++) members[i].Add(words[i]);
        for (int i = c; i < words.Length; i++) members[Pick(rng, Cumulative(classWeights))].Add(words[i]);
        var classWords = members.Select(m => m.OrderBy(w => w).ToArray()).ToArray();
        // Within a class, the k-th most frequent word (k = 1, 2, …; words in id order) has weight k^−s.
        var classCumulative = classWords
            .Select(ws => Cumulative(ws.Select((_, k) => Math.Pow(k + 1, -options.ZipfExponent)).ToArray()))
            .ToArray();

        // Productions: non-terminal i → 2–4 alternatives of 1–3 symbols; a symbol is a non-terminal j > i with
        // probability 0.35 (none for the last), else a word class.
        int n = options.NonTerminals;
        var productions = new Symbol[n][][];
        var productionCumulative = new double[n][];
        for (int i = 0; i < n; i++) {
            int alternatives = 2 + rng.Next(3);
            productions[i] = new Symbol[alternatives][];
            for (int a = 0; a < alternatives; a++) {
                int length = 1 + rng.Next(3);
                productions[i][a] = Enumerable.Range(0, length).Select(_ =>
                    i < n - 1 && rng.NextDouble() < 0.35
                        ? new Symbol(false, i + 1 + rng.Next(n - 1 - i))
                        : new Symbol(true, rng.Next(c))).ToArray();
            }
            productionCumulative[i] = Cumulative(Enumerable.Range(0, alternatives).Select(_ => 0.2 + rng.NextDouble()).ToArray());
        }
        return new GrammarCorpus(options, seed, classWords, classCumulative, productions, productionCumulative);
    }

    /// <summary>Samples sentences until <paramref name="tokenCount"/> tokens (the last sentence is cut).</summary>
    public int[] Sample(int tokenCount, int samplingSeed)
    {
        if (tokenCount < 0) throw new ArgumentOutOfRangeException(nameof(tokenCount), tokenCount, "Token count cannot be negative.");
        var rng = new Random(samplingSeed);
        var tokens = new List<int>(tokenCount + Options.MaxSentenceLength + 1);
        var sentence = new List<int>();
        while (tokens.Count < tokenCount) {
            sentence.Clear();
            Expand(0, rng, sentence);
            if (sentence.Count > Options.MaxSentenceLength) sentence.RemoveRange(Options.MaxSentenceLength, sentence.Count - Options.MaxSentenceLength);
            tokens.AddRange(sentence);
            tokens.Add(EndOfSentence);
        }
        return tokens.Take(tokenCount).ToArray();
    }

    /// <summary>A readable rendering of tokens (w17 for word 17, '.' for end of sentence).</summary>
    public static string Render(IEnumerable<int> tokens)
    {
        ArgumentNullException.ThrowIfNull(tokens);
        var sb = new StringBuilder();
        foreach (var t in tokens) {
            if (t == EndOfSentence) sb.Append(".\n");
            else sb.Append('w').Append(t).Append(' ');
        }
        return sb.ToString();
    }

    private void Expand(int nonTerminal, Random rng, List<int> output)
    {
        if (output.Count > Options.MaxSentenceLength) return;
        var production = _productions[nonTerminal][Pick(rng, _productionCumulative[nonTerminal])];
        foreach (var s in production) {
            if (s.IsClass) output.Add(_classWords[s.Index][Pick(rng, _classCumulative[s.Index])]);
            else Expand(s.Index, rng, output);
        }
    }

    private static double[] Cumulative(double[] weights)
    {
        var c = new double[weights.Length];
        double total = weights.Sum(), acc = 0;
        for (int i = 0; i < weights.Length; i++) {
            acc += weights[i] / total;
            c[i] = acc;
        }
        c[^1] = 1.0;
        return c;
    }

    private static int Pick(Random rng, double[] cumulative)
    {
        double u = rng.NextDouble();
        int i = Array.BinarySearch(cumulative, u);
        if (i < 0) i = ~i;
        return Math.Min(i, cumulative.Length - 1);
    }
}

/// <summary>A token stream split into training and held-out parts, with its vocabulary size and a description.</summary>
public sealed record TokenCorpus(int[] Train, int[] HeldOut, int VocabularySize, string Description)
{
    /// <summary>The generated corpus: <paramref name="trainTokens"/> and <paramref name="heldOutTokens"/> from the
    /// grammar of <paramref name="seed"/> (sampled with independent streams).</summary>
    public static TokenCorpus Generated(int seed, int trainTokens, int heldOutTokens, GrammarOptions? options = null)
    {
        var g = GrammarCorpus.Create(seed, options);
        var train = g.Sample(trainTokens, seed * 7919 + 1);
        var st = CorpusStatistics.Of(train);
        return new TokenCorpus(train, g.Sample(heldOutTokens, seed * 7919 + 2), g.VocabularySize,
            $"random PCFG (seed {seed}, {g.VocabularySize} tokens, Zipf s = {g.Options.ZipfExponent}; in training {st.Distinct} distinct, {st.Rare} seen ≤ {st.RareThreshold} times, rank-frequency slope {st.ZipfSlope:F2}), {trainTokens} training / {heldOutTokens} held-out tokens");
    }

    /// <summary>A plain-text file at character level: the first 90% trains, the rest is held out.</summary>
    public static TokenCorpus FromTextFile(string path, int? maxCharacters = null)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (!File.Exists(path)) throw new FileNotFoundException($"Text file not found: {path}", path);
        var text = File.ReadAllText(path);
        if (maxCharacters is int m && text.Length > m) text = text[..m];
        if (text.Length < 1000)
            throw new InvalidDataException($"{path}: {text.Length} characters; the character-level task needs at least 1,000.");
        var alphabet = text.Distinct().OrderBy(ch => ch).ToArray();
        var index = alphabet.Select((ch, i) => (ch, i)).ToDictionary(p => p.ch, p => p.i);
        var ids = text.Select(ch => index[ch]).ToArray();
        int cut = (int)(ids.Length * 0.9);
        return new TokenCorpus(ids[..cut], ids[cut..], alphabet.Length,
            $"{Path.GetFileName(path)} at character level ({alphabet.Length} symbols), {cut} training / {ids.Length - cut} held-out characters");
    }
}
