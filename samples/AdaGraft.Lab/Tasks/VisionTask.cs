using System;
using System.Linq;
using AdaGraft.Lab.Data;
using TorchSharp;
using static TorchSharp.torch;

namespace AdaGraft.Lab.Tasks;

/// <summary>Settings of the vision task.</summary>
/// <param name="Hidden">Width of the MLP's two hidden layers.</param>
/// <param name="BatchSize">Examples per step.</param>
/// <param name="MaxTrain">Use at most this many training examples (null: all loaded).</param>
/// <param name="MaxTest">Use at most this many test examples (null: all loaded).</param>
public sealed record VisionSettings(int Hidden = 128, int BatchSize = 128, int? MaxTrain = null, int? MaxTest = null);

/// <summary>
/// Fashion-MNIST classification with an MLP (784 → h → h → 10, ReLU), cross-entropy loss; held-out metric is test
/// accuracy. Pixels are scaled to [0, 1] and standardised by the training set's mean and standard deviation.
/// </summary>
public sealed class VisionTask : LabTask
{
    private readonly Tensor _trainX, _trainY, _testX, _testY;
    private readonly VisionSettings _settings;
    private readonly string _source;

    /// <summary>Uploads <paramref name="train"/> and <paramref name="test"/> to <paramref name="device"/>.</summary>
    public VisionTask(LabelledImages train, LabelledImages test, VisionSettings settings, Device device, string source)
        : base(device)
    {
        ArgumentNullException.ThrowIfNull(train);
        ArgumentNullException.ThrowIfNull(test);
        ArgumentNullException.ThrowIfNull(settings);
        if (settings.MaxTrain is int mt) train = train.Take(mt);
        if (settings.MaxTest is int ms) test = test.Take(ms);
        _settings = settings;
        _source = source;
        TrainCount = train.Count;
        TestCount = test.Count;
        ImageSize = train.ImageSize;
        if (TrainCount < settings.BatchSize)
            throw new ArgumentException($"{TrainCount} training images are fewer than one batch of {settings.BatchSize}.", nameof(train));

        double mean = train.Pixels.Average(b => (double)b) / 255.0;
        double var = train.Pixels.Average(b => Math.Pow(b / 255.0 - mean, 2));
        double sd = Math.Sqrt(var);
        _trainX = Upload(train, mean, sd, device);
        _testX = Upload(test, mean, sd, device);
        _trainY = torch.tensor(train.Labels.Select(b => (long)b).ToArray(), device: device);
        _testY = torch.tensor(test.Labels.Select(b => (long)b).ToArray(), device: device);
    }

    private static Tensor Upload(LabelledImages d, double mean, double sd, Device device)
    {
        using var bytes = torch.tensor(d.Pixels, new long[] { d.Count, d.ImageSize });
        using var f = bytes.to_type(ScalarType.Float32).div_(255.0).sub_(mean).div_(sd);
        return f.to(device);
    }

    /// <summary>Training examples used.</summary>
    public int TrainCount { get; }

    /// <summary>Test examples used.</summary>
    public int TestCount { get; }

    /// <summary>Pixels per image.</summary>
    public int ImageSize { get; }

    /// <summary>Examples per step.</summary>
    public int BatchSize => _settings.BatchSize;

    /// <inheritdoc />
    public override string Name => "vision";

    /// <inheritdoc />
    public override string Description =>
        $"Fashion-MNIST ({_source}: {TrainCount} train / {TestCount} test), MLP {ImageSize}-{_settings.Hidden}-{_settings.Hidden}-10 ReLU, batch {BatchSize}";

    /// <inheritdoc />
    public override string HeldOutName => "test accuracy";

    /// <inheritdoc />
    public override bool HeldOutHigherIsBetter => true;

    /// <inheritdoc />
    public override nn.Module<Tensor, Tensor> CreateModel(int seed)
    {
        Seed(seed);
        var m = nn.Sequential(
            ("fc1", nn.Linear(ImageSize, _settings.Hidden)), ("relu1", nn.ReLU()),
            ("fc2", nn.Linear(_settings.Hidden, _settings.Hidden)), ("relu2", nn.ReLU()),
            ("out", nn.Linear(_settings.Hidden, 10)));
        m.to(Device);
        return m;
    }

    /// <inheritdoc />
    public override Tensor CreatePlan(int seed, int steps)
    {
        // Epochs of shuffled indices (without replacement within an epoch), drawn on the host once per run.
        var rng = new Random(seed * 1_000_003 + 17);
        var plan = new long[(long)steps * BatchSize];
        var perm = Enumerable.Range(0, TrainCount).ToArray();
        int pos = TrainCount;
        for (long i = 0; i < plan.Length; i++) {
            if (pos == TrainCount) {
                rng.Shuffle(perm);
                pos = 0;
            }
            plan[i] = perm[pos++];
        }
        return torch.tensor(plan, new long[] { steps, BatchSize }, device: Device);
    }

    /// <inheritdoc />
    public override Tensor Loss(nn.Module<Tensor, Tensor> model, Tensor plan, int stepIndex)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(plan);
        var idx = plan[stepIndex];
        var x = _trainX.index_select(0, idx);
        var y = _trainY.index_select(0, idx);
        return nn.functional.cross_entropy(model.forward(x), y);
    }

    /// <inheritdoc />
    public override Evaluation Evaluate(nn.Module<Tensor, Tensor> model)
    {
        ArgumentNullException.ThrowIfNull(model);
        using var _ = torch.no_grad();
        using var scope = torch.NewDisposeScope();
        model.eval();
        const int Chunk = 2000;
        var lossSum = torch.zeros(1, dtype: ScalarType.Float64, device: Device);
        for (int i = 0; i < TrainCount; i += Chunk) {
            int n = Math.Min(Chunk, TrainCount - i);
            var logits = model.forward(_trainX.narrow(0, i, n));
            lossSum.add_(nn.functional.cross_entropy(logits, _trainY.narrow(0, i, n), reduction: nn.Reduction.Sum).to_type(ScalarType.Float64));
        }
        var correct = torch.zeros(1, dtype: ScalarType.Int64, device: Device);
        for (int i = 0; i < TestCount; i += Chunk) {
            int n = Math.Min(Chunk, TestCount - i);
            var pred = model.forward(_testX.narrow(0, i, n)).argmax(1);
            correct.add_(pred.eq(_testY.narrow(0, i, n)).sum());
        }
        model.train();
        return new Evaluation(lossSum.item<double>() / TrainCount, correct.item<long>() / (double)TestCount);
    }

    /// <inheritdoc />
    protected override void Dispose(bool disposing)
    {
        if (disposing) {
            _trainX.Dispose();
            _trainY.Dispose();
            _testX.Dispose();
            _testY.Dispose();
        }
        base.Dispose(disposing);
    }
}
