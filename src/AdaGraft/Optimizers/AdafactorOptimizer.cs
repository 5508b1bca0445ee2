using System;
using System.Collections.Generic;
using AdaGraft.Rules;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.optim;

namespace AdaGraft.Optimizers;

/// <summary>
/// Adafactor (Shazeer and Stern, 2018, "Adafactor: Adaptive Learning Rates with Sublinear Memory Cost") as a TorchSharp optimizer; see <see cref="AdafactorRule"/> for the update. Build it with <c>Create</c>.
/// Usable standalone and inside closed-form grafting.
/// </summary>
public sealed class AdafactorOptimizer : MomentRuleOptimizer<AdafactorOptions, AdafactorState, AdafactorOptimizer.ParamGroup>
{
    /// <summary>A parameter group with its own options; unset options inherit the optimizer's.</summary>
    public sealed class ParamGroup : MomentParamGroup<AdafactorOptions>
    {
        /// <summary>An empty group (set <c>Parameters</c>).</summary>
        public ParamGroup() { }

        /// <summary>A group over <paramref name="parameters"/> with <paramref name="options"/> (null: all inherited).</summary>
        public ParamGroup(IEnumerable<Parameter> parameters, AdafactorOptions? options = null) : base(parameters, options) { }
    }

    /// <summary>Creates the optimizer over <paramref name="parameters"/> with <paramref name="options"/> (every option must be set).</summary>
    public AdafactorOptimizer(IEnumerable<Parameter> parameters, AdafactorOptions options)
        : base(parameters, options) { }

    /// <summary>Creates the optimizer over parameter groups; unset group options come from <paramref name="defaults"/>.</summary>
    public AdafactorOptimizer(IEnumerable<ParamGroup> groups, AdafactorOptions defaults)
        : base(groups, defaults) { }


    /// <summary>Options with every hyperparameter set.</summary>
    public static AdafactorOptions DefaultOptions(double lr, double beta1 = 0, double decay_rate = 0.8, double? beta2 = null, double eps1 = 1e-30, double eps2 = 1e-3, double clip_threshold = 1.0, bool relative_step = false) => new() {
        LearningRate = lr,
        Beta1 = beta1,
        DecayRate = decay_rate,
        Beta2 = beta2 ?? 0.999,
        FixedBeta2 = beta2 is not null,
        Epsilon1 = eps1,
        Epsilon2 = eps2,
        ClipThreshold = clip_threshold,
        RelativeStep = relative_step,
    };

    /// <summary>
    /// Adafactor with PyTorch-style arguments: an explicit learning rate (no relative step unless
    /// <c>relative_step</c>), no momentum unless <c>beta1</c> &gt; 0, the decay schedule 1 − t^(−decay_rate) unless a
    /// fixed <c>beta2</c> is given (then bias-corrected), ε1 = 1e-30, ε2 = 1e-3 and update clipping d = 1.
    /// </summary>
    public static AdafactorOptimizer Create(IEnumerable<Parameter> parameters, double lr, double beta1 = 0, double decay_rate = 0.8, double? beta2 = null, double eps1 = 1e-30, double eps2 = 1e-3, double clip_threshold = 1.0, bool relative_step = false)
        => new(parameters, DefaultOptions(lr, beta1, decay_rate, beta2, eps1, eps2, clip_threshold, relative_step));

    /// <summary>The same preset over parameter groups: unset group options take these arguments.</summary>
    public static AdafactorOptimizer Create(IEnumerable<ParamGroup> parameters, double lr, double beta1 = 0, double decay_rate = 0.8, double? beta2 = null, double eps1 = 1e-30, double eps2 = 1e-3, double clip_threshold = 1.0, bool relative_step = false)
        => new(parameters, DefaultOptions(lr, beta1, decay_rate, beta2, eps1, eps2, clip_threshold, relative_step));

    /// <inheritdoc />
    protected override AdafactorState CreateState(Parameter parameter, AdafactorOptions options) => new(parameter);

    /// <inheritdoc />
    protected override Proposal Propose(AdafactorOptions options, AdafactorState state, Parameter parameter, Tensor grad) =>
        AdafactorRule.Propose(options, state, parameter, grad);

}
