using static TorchSharp.torch.optim;
using static TorchSharp.torch.optim.lr_scheduler;

namespace AdaGraft.Schedules;

/// <summary>
/// Multiplies a correction c(t) on top of any TorchSharp LR scheduler (or on top of the constant learning rate when
/// there is none): the learning rate used at optimizer step t is exactly <c>inner(t) · c(t)</c>, in every parameter
/// group, with one correction per group if wanted (layer-wise schedules, section 4.2). Call <see cref="step()"/> once
/// after each optimizer step, instead of the inner scheduler's step.
/// </summary>
/// <remarks>
/// The inner scheduler may be chainable (StepLR, ExponentialLR multiply the current rate): before it steps, the
/// corrected rates are put back to the inner scheduler's own values, so corrections never compound.
/// </remarks>
public sealed class CorrectedScheduler : LRScheduler
{
    private readonly Optimizer _optimizer;
    private readonly LRScheduler? _inner;
    private readonly ILearningRateCorrection[] _corrections;
    private readonly double[] _innerRates;
    private long _t;

    /// <summary>One correction for every group.</summary>
    public CorrectedScheduler(Optimizer optimizer, ILearningRateCorrection correction, LRScheduler? inner = null)
        : this(optimizer, Repeat(optimizer, correction), inner)
    {
    }

    /// <summary>One correction per parameter group (in the optimizer's group order).</summary>
    public CorrectedScheduler(Optimizer optimizer, IReadOnlyList<ILearningRateCorrection> corrections, LRScheduler? inner = null)
    {
        ArgumentNullException.ThrowIfNull(optimizer);
        ArgumentNullException.ThrowIfNull(corrections);
        var groups = optimizer.ParamGroups.ToList();
        if (corrections.Count != groups.Count)
            throw new ArgumentException($"{corrections.Count} corrections for {groups.Count} parameter groups; give one per group.", nameof(corrections));
        if (corrections.Any(c => c is null)) throw new ArgumentException("A correction is null.", nameof(corrections));
        _optimizer = optimizer;
        _inner = inner;
        _corrections = corrections.ToArray();
        _innerRates = groups.Select(g => g.LearningRate).ToArray();
        Apply();
    }

    private static ILearningRateCorrection[] Repeat(Optimizer optimizer, ILearningRateCorrection correction)
    {
        ArgumentNullException.ThrowIfNull(optimizer);
        ArgumentNullException.ThrowIfNull(correction);
        return Enumerable.Repeat(correction, optimizer.ParamGroups.Count()).ToArray();
    }

    /// <summary>Optimizer steps taken so far (the next step is <c>StepsTaken + 1</c>).</summary>
    public long StepsTaken => _t;

    /// <summary>The inner scheduler's current rates (before correction), per group.</summary>
    public IReadOnlyList<double> InnerRates => _innerRates;

    /// <summary>Advances the inner scheduler and the correction by one optimizer step.</summary>
    public override void step() => step(null);

    /// <summary>Advances by one optimizer step (an explicit epoch is passed to the inner scheduler).</summary>
    public override void step(int? epoch)
    {
        var groups = _optimizer.ParamGroups.ToList();
        for (int i = 0; i < groups.Count; i++) groups[i].LearningRate = _innerRates[i];
        if (_inner is not null) {
            if (epoch.HasValue) _inner.step(epoch);
            else _inner.step();
        }
        for (int i = 0; i < groups.Count; i++) _innerRates[i] = groups[i].LearningRate;
        _t++;
        Apply();
    }

    private void Apply()
    {
        var groups = _optimizer.ParamGroups.ToList();
        for (int i = 0; i < groups.Count; i++) {
            double c = _corrections[i].Factor(_t + 1);
            if (!double.IsFinite(c) || c < 0)
                throw new InvalidOperationException($"The correction for group {i} gave {c} at step {_t + 1}; corrections must be finite and ≥ 0.");
            groups[i].LearningRate = _innerRates[i] * c;
        }
    }

    /// <summary>The rates in use now (after correction).</summary>
    public IReadOnlyList<double> CurrentRates => _optimizer.ParamGroups.Select(g => g.LearningRate).ToList();
}
