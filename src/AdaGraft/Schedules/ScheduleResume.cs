using static TorchSharp.torch.optim;
using static TorchSharp.torch.optim.lr_scheduler;

namespace AdaGraft.Schedules;

/// <summary>
/// Resuming a learning-rate schedule after loading an optimizer checkpoint. TorchSharp's schedulers keep no state
/// that can be saved, and the PyTorch habit of passing <c>last_epoch: k</c> does not resume them: a chainable
/// scheduler (<c>StepLR</c>, <c>ExponentialLR</c>, <c>MultiplicativeLR</c>) multiplies the learning rate that was
/// loaded from the checkpoint, which has already decayed (it decays twice), and <c>OneCycleLR</c> needs the momentum
/// values that only a fresh start sets. <see cref="Rebuild"/> instead builds the scheduler as at the start of the run
/// and replays its steps, which needs nothing but the number of <c>step()</c> calls made before the save.
/// </summary>
/// <remarks>
/// The recipe: save the optimizer (<c>save_state_dict</c>) and the step count after <c>scheduler.step()</c>; to resume,
/// build the model and the optimizer with the same arguments as the first run, load both, then
/// <c>ScheduleResume.Rebuild(optimizer, o =&gt; StepLR(o, 30, 0.1), stepsTaken)</c> with the same scheduler
/// arguments. The learning rates (and momenta a cycling scheduler sets) are then those of the uninterrupted run, bit for
/// bit, and so are the parameters after every later step. Schedulers driven by a metric (<c>ReduceLROnPlateau</c>)
/// cannot be replayed this way.
/// </remarks>
public static class ScheduleResume
{
    /// <summary>
    /// Builds a scheduler with <paramref name="create"/> as at the start of training and steps it
    /// <paramref name="stepsTaken"/> times (no optimizer steps are taken). The replay starts from each group's
    /// <c>InitialLearningRate</c> (the rate the optimizer was built with; AdaGraft checkpoints carry it), so the rate
    /// loaded from a checkpoint is never multiplied again.
    /// </summary>
    /// <typeparam name="TScheduler">The scheduler type <paramref name="create"/> returns.</typeparam>
    /// <param name="optimizer">The optimizer, built with the first run's arguments and loaded from the checkpoint.</param>
    /// <param name="create">Builds the scheduler on the optimizer it is given, with the first run's arguments and
    /// <c>last_epoch</c> left at its default, e.g. <c>o =&gt; StepLR(o, 30, 0.1)</c> or
    /// <c>o =&gt; new CorrectedScheduler(o, correction, LambdaLR(o, f))</c>.</param>
    /// <param name="stepsTaken">How many times the first run called <c>scheduler.step()</c> before the save.</param>
    /// <param name="checkLoadedRates">When true (default), the learning rates the optimizer holds before the call
    /// (those loaded from the checkpoint) must equal the replayed ones exactly; otherwise every learning rate and
    /// momentum is put back and <see cref="InvalidDataException"/> names the first group that differs (the checkpoint
    /// was saved at another step, or under other scheduler arguments). Pass false to fast-forward an optimizer that was
    /// not loaded.</param>
    /// <returns>The scheduler, ready for the next <c>step()</c>.</returns>
    public static TScheduler Rebuild<TScheduler>(Optimizer optimizer, Func<Optimizer, TScheduler> create, int stepsTaken, bool checkLoadedRates = true)
        where TScheduler : LRScheduler
    {
        ArgumentNullException.ThrowIfNull(optimizer);
        ArgumentNullException.ThrowIfNull(create);
        if (stepsTaken < 0)
            throw new ArgumentOutOfRangeException(nameof(stepsTaken), stepsTaken, "stepsTaken is the number of scheduler.step() calls before the save; it cannot be negative.");
        var groups = optimizer.ParamGroups.ToList();
        var snapshot = Snapshot.Take(optimizer, groups);
        try {
            foreach (var g in groups) g.LearningRate = g.InitialLearningRate;
            var scheduler = create(optimizer) ?? throw new ArgumentException("create returned null; it must return the scheduler it builds.", nameof(create));
            for (int k = 0; k < stepsTaken; k++) scheduler.step();
            if (checkLoadedRates) {
                for (int i = 0; i < groups.Count; i++) {
                    double replayed = groups[i].LearningRate, loaded = snapshot.Rates[i];
                    if (replayed.Equals(loaded)) continue;
                    throw new InvalidDataException(
                        $"Parameter group {i}: the optimizer holds learning rate {loaded:R} but the schedule replayed for {stepsTaken} steps gives {replayed:R}. " +
                        "Pass as stepsTaken the number of scheduler.step() calls made before the checkpoint was saved, build the scheduler with the first run's arguments, " +
                        "and load the checkpoint before calling Rebuild (or pass checkLoadedRates: false for an optimizer that was not loaded).");
                }
            }
            return scheduler;
        } catch {
            snapshot.Restore(optimizer, groups);
            throw;
        }
    }

    /// <summary>Learning rates, momenta and betas as they were, to put back when a rebuild fails.</summary>
    private sealed record Snapshot(double[] Rates, double? Momentum, (double, double)? Betas, double?[] GroupMomenta, (double, double)?[] GroupBetas)
    {
        public static Snapshot Take(Optimizer optimizer, System.Collections.Generic.List<ILearningRateController> groups) => new(
            groups.Select(g => g.LearningRate).ToArray(),
            optimizer is IMomentum om ? Read(() => om.Momentum) : null,
            optimizer is IBetas ob ? Read(() => ob.Betas) : null,
            groups.Select(g => g is IMomentum gm ? Read(() => gm.Momentum) : null).ToArray(),
            groups.Select(g => g is IBetas gb ? Read(() => gb.Betas) : null).ToArray());

        /// <summary>A value, or null where the optimizer cannot report it (e.g. a rule without β2).</summary>
        private static T? Read<T>(Func<T> get) where T : struct
        {
            try {
                return get();
            } catch (InvalidOperationException) {
                return null;
            } catch (NotSupportedException) {
                return null;
            }
        }

        public void Restore(Optimizer optimizer, System.Collections.Generic.List<ILearningRateController> groups)
        {
            if (Momentum is double m && optimizer is IMomentum om) om.Momentum = m;
            if (Betas is (double, double) b && optimizer is IBetas ob) ob.Betas = b;
            for (int i = 0; i < groups.Count; i++) {
                groups[i].LearningRate = Rates[i];
                if (GroupMomenta[i] is double gm && groups[i] is IMomentum im) im.Momentum = gm;
                if (GroupBetas[i] is (double, double) gb && groups[i] is IBetas ib) ib.Betas = gb;
            }
        }
    }
}
