using System;
using System.Linq;
using AdaGraft.Lab.Data;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace AdaGraft.Lab.Tasks;

/// <summary>Settings of the language task.</summary>
/// <param name="Embedding">Embedding width.</param>
/// <param name="Hidden">LSTM width.</param>
/// <param name="SequenceLength">Tokens predicted per window.</param>
/// <param name="BatchSize">Windows per step.</param>
/// <param name="EvalWindows">Windows (evenly spaced) over which the final training and held-out losses are taken.</param>
public sealed record LanguageSettings(int Embedding = 32, int Hidden = 96, int SequenceLength = 32, int BatchSize = 32, int EvalWindows = 256);

/// <summary>A token-level LSTM language model: embedding → one LSTM layer → linear softmax layer.</summary>
public sealed class LstmLanguageModel : nn.Module<Tensor, Tensor>
{
    private readonly Embedding embedding;
    private readonly LSTM lstm;
    private readonly Linear softmax;

    /// <summary>A model over <paramref name="vocabulary"/> tokens.</summary>
    public LstmLanguageModel(int vocabulary, int embeddingSize, int hidden) : base(nameof(LstmLanguageModel))
    {
        embedding = nn.Embedding(vocabulary, embeddingSize);
        lstm = nn.LSTM(embeddingSize, hidden, batchFirst: true);
        softmax = nn.Linear(hidden, vocabulary);
        RegisterComponents();
    }

    /// <summary>Logits [batch, length, vocabulary] for input tokens [batch, length].</summary>
    public override Tensor forward(Tensor input)
    {
        var (output, h, c) = lstm.forward(embedding.forward(input));
        h.Dispose();
        c.Dispose();
        return softmax.forward(output);
    }

    /// <inheritdoc />
    protected override void Dispose(bool disposing)
    {
        if (disposing) {
            embedding.Dispose();
            lstm.Dispose();
            softmax.Dispose();
        }
        base.Dispose(disposing);
    }
}

/// <summary>
/// Next-token prediction on a token stream (the generated grammar corpus, or a text file at character level):
/// random windows of <see cref="LanguageSettings.SequenceLength"/> + 1 tokens, cross-entropy over every position.
/// The held-out metric is the mean cross-entropy on held-out windows (nats per token).
/// </summary>
public sealed class LanguageTask : LabTask
{
    private readonly Tensor _train, _heldOut, _offsets, _trainEvalStarts, _heldOutEvalStarts;
    private readonly LanguageSettings _settings;
    private readonly TokenCorpus _corpus;

    /// <summary>Uploads <paramref name="corpus"/> to <paramref name="device"/>.</summary>
    public LanguageTask(TokenCorpus corpus, LanguageSettings settings, Device device) : base(device)
    {
        ArgumentNullException.ThrowIfNull(corpus);
        ArgumentNullException.ThrowIfNull(settings);
        _corpus = corpus;
        _settings = settings;
        int window = settings.SequenceLength + 1;
        if (corpus.Train.Length < window * 2 || corpus.HeldOut.Length < window)
            throw new ArgumentException($"The corpus is too short for windows of {window} tokens.", nameof(corpus));
        _train = torch.tensor(corpus.Train.Select(t => (long)t).ToArray(), device: device);
        _heldOut = torch.tensor(corpus.HeldOut.Select(t => (long)t).ToArray(), device: device);
        _offsets = torch.arange(window, dtype: ScalarType.Int64, device: device).unsqueeze(0);
        _trainEvalStarts = EvenStarts(corpus.Train.Length, window, settings.EvalWindows, device);
        _heldOutEvalStarts = EvenStarts(corpus.HeldOut.Length, window, settings.EvalWindows, device);
    }

    private static Tensor EvenStarts(int length, int window, int count, Device device)
    {
        int last = length - window;
        count = Math.Min(count, last + 1);
        var starts = Enumerable.Range(0, count).Select(i => (long)((double)i * last / Math.Max(1, count - 1))).ToArray();
        return torch.tensor(starts, device: device);
    }

    /// <summary>Tokens in the vocabulary.</summary>
    public int VocabularySize => _corpus.VocabularySize;

    /// <inheritdoc />
    public override string Name => "language";

    /// <inheritdoc />
    public override string Description =>
        $"{_corpus.Description}; LSTM LM (embedding {_settings.Embedding}, hidden {_settings.Hidden}, softmax over {VocabularySize}), windows of {_settings.SequenceLength}, batch {_settings.BatchSize}";

    /// <inheritdoc />
    public override string HeldOutName => "held-out loss";

    /// <inheritdoc />
    public override bool HeldOutHigherIsBetter => false;

    /// <inheritdoc />
    public override nn.Module<Tensor, Tensor> CreateModel(int seed)
    {
        Seed(seed);
        var m = new LstmLanguageModel(VocabularySize, _settings.Embedding, _settings.Hidden);
        m.to(Device);
        return m;
    }

    /// <inheritdoc />
    public override Tensor CreatePlan(int seed, int steps)
    {
        var rng = new Random(seed * 1_000_003 + 29);
        int last = _corpus.Train.Length - (_settings.SequenceLength + 1);
        var plan = new long[(long)steps * _settings.BatchSize];
        for (long i = 0; i < plan.Length; i++) plan[i] = rng.Next(last + 1);
        return torch.tensor(plan, new long[] { steps, _settings.BatchSize }, device: Device);
    }

    private Tensor WindowLoss(nn.Module<Tensor, Tensor> model, Tensor tokens, Tensor starts, nn.Reduction reduction)
    {
        var idx = starts.unsqueeze(1).add(_offsets);                 // [B, L+1]
        var windows = tokens.index_select(0, idx.reshape(-1)).view(idx.shape);
        int l = _settings.SequenceLength;
        var input = windows.narrow(1, 0, l);
        var target = windows.narrow(1, 1, l);
        var logits = model.forward(input);                           // [B, L, V]
        return nn.functional.cross_entropy(logits.reshape(-1, VocabularySize), target.reshape(-1), reduction: reduction);
    }

    /// <inheritdoc />
    public override Tensor Loss(nn.Module<Tensor, Tensor> model, Tensor plan, int stepIndex)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(plan);
        return WindowLoss(model, _train, plan[stepIndex], nn.Reduction.Mean);
    }

    /// <inheritdoc />
    public override Evaluation Evaluate(nn.Module<Tensor, Tensor> model)
    {
        ArgumentNullException.ThrowIfNull(model);
        using var _ = torch.no_grad();
        model.eval();
        double train = MeanLoss(model, _train, _trainEvalStarts);
        double heldOut = MeanLoss(model, _heldOut, _heldOutEvalStarts);
        model.train();
        return new Evaluation(train, heldOut);
    }

    private double MeanLoss(nn.Module<Tensor, Tensor> model, Tensor tokens, Tensor starts)
    {
        using var scope = torch.NewDisposeScope();
        const int Chunk = 64;
        long n = starts.shape[0];
        var sum = torch.zeros(1, dtype: ScalarType.Float64, device: Device);
        for (long i = 0; i < n; i += Chunk) {
            long m = Math.Min(Chunk, n - i);
            sum.add_(WindowLoss(model, tokens, starts.narrow(0, i, m), nn.Reduction.Sum).to_type(ScalarType.Float64));
        }
        return sum.item<double>() / (n * _settings.SequenceLength);
    }

    /// <inheritdoc />
    protected override void Dispose(bool disposing)
    {
        if (disposing) {
            _train.Dispose();
            _heldOut.Dispose();
            _offsets.Dispose();
            _trainEvalStarts.Dispose();
            _heldOutEvalStarts.Dispose();
        }
        base.Dispose(disposing);
    }
}
