using System;
using System.Collections.Generic;
using System.Linq;
using AdaGraft.Rules;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.optim;

namespace AdaGraft.Optimizers;

/// <summary>
/// Algorithm 1 of Agarwal, Anil, Hazan, Koren and Zhang (2020), "Disentangling Adaptive Gradient Methods from
/// Learning Rates", as a TorchSharp optimizer: one generic second-moment rule that is SGD, heavy ball, AdaGrad,
/// RMSprop or Adam depending on its options (see <see cref="SecondMomentRule"/> for the update in pseudo-code).
/// </summary>
/// <remarks>
/// Use a preset: the paper's forms (<see cref="Sgd"/>, <see cref="HeavyBall"/>, <see cref="AdaGrad"/>,
/// <see cref="RmsProp"/>, <see cref="Adam"/>: momentum 0.9 and ε = 0 unless given), or the forms that reproduce
/// TorchSharp's built-ins with their own defaults (<see cref="TorchSgd"/>, <see cref="TorchAdam"/>,
/// <see cref="TorchAdamW"/>, <see cref="TorchAdagrad"/>, <see cref="TorchRmsProp"/>).
/// LR schedulers change <c>ParamGroup.LearningRate</c>; schedulers that cycle momentum or betas use
/// <see cref="IMomentum"/> (β1) and <see cref="IBetas"/> (β1, β2).
/// </remarks>
public sealed class GenericSecondMomentOptimizer : MomentRuleOptimizer<SecondMomentOptions, SecondMomentState, SecondMomentRule>, IFusedPlanSource
{
    /// <summary>A parameter group with its own options; unset options inherit the optimizer's.</summary>
    public sealed class ParamGroup : MomentParamGroup<SecondMomentOptions>
    {
        /// <summary>An empty group (set <c>Parameters</c>).</summary>
        public ParamGroup() { }

        /// <summary>A group over <paramref name="parameters"/> with <paramref name="options"/> (null: all inherited).</summary>
        public ParamGroup(IEnumerable<Parameter> parameters, SecondMomentOptions? options = null) : base(parameters, options) { }
    }

    /// <summary>Creates the optimizer over <paramref name="parameters"/> with <paramref name="options"/> (every option must be set).</summary>
    public GenericSecondMomentOptimizer(IEnumerable<Parameter> parameters, SecondMomentOptions options)
        : base(parameters, options) { }

    /// <summary>Creates the optimizer over parameter groups; unset group options come from <paramref name="defaults"/>.</summary>
    public GenericSecondMomentOptimizer(IEnumerable<ParamGroup> groups, SecondMomentOptions defaults)
        : base(groups, defaults) { }

    /// <summary>
    /// On (default): contiguous float32/float64 CPU tensors take each step in one fused pass over memory (SIMD, chunks
    /// in parallel) instead of one pass per tensor operation; the numbers agree with the eager path to round-off.
    /// Off: always the eager TorchSharp operations (what CUDA, half-precision and strided tensors use anyway).
    /// The process-wide switch <see cref="CpuSwitches.FusedKernels"/> (<c>ADAGRAFT_FUSED_CPU=0</c>) turns the kernel
    /// off for every instance, whatever this says.
    /// The kernel writes through the tensors' data pointers and then advances the autograd version counter of every
    /// tensor it wrote, so a backward pass through a graph that saw the old values raises, as on the eager path.
    /// </summary>
    public bool FusedCpuKernel { get; set; } = true;

    /// <summary>The one place this optimizer decides: its own option and the process-wide switch.</summary>
    private bool Fused => CpuSwitches.Fused(FusedCpuKernel);

    /// <summary>How many tensor steps the fused kernel has taken (diagnostics and tests).</summary>
    internal long FusedTensorSteps { get; private set; }

    /// <inheritdoc />
    protected override bool[]? TryFusedSteps(IReadOnlyList<TensorStep> tensors)
    {
        if (!Fused || tensors.Count == 0) return null;
        int n = tensors.Count;
        var fused = new bool[n];
        var plans = new FusedPlan[n];
        var w = new IntPtr[n];
        var g = new IntPtr[n];
        var single = new bool[n];
        var items = new List<FusedCpu.WorkItem>();
        long total = 0;
        for (int i = 0; i < n; i++) {
            var (options, state, p, grad) = tensors[i];
            if (!SecondMomentRule.CanFuse(state, p, grad)) continue;
            fused[i] = true;
            plans[i] = SecondMomentRule.Plan(options, state);
            w[i] = FusedCpu.Pointer(p);
            g[i] = FusedCpu.Pointer(grad);
            single[i] = p.dtype == ScalarType.Float32;
            long numel = p.numel();
            FusedCpu.Split(items, i, numel, 0, 0);
            total += numel;
        }
        if (!Array.Exists(fused, f => f)) return null;
        // One parallel loop over every fused tensor's chunks: many small tensors share the threads, as one large one does.
        FusedCpu.Run(items.Count, total, j => {
            var (t, start, length, _) = items[j];
            if (single[t]) FusedCpu.Step<float>(plans[t], w[t], g[t], start, start + length);
            else FusedCpu.Step<double>(plans[t], w[t], g[t], start, start + length);
        });
        // The kernels wrote through data pointers: advance the version counters as the eager in-place ops would, and
        // keep every tensor whose address they used alive until here.
        for (int i = 0; i < n; i++) {
            if (!fused[i]) continue;
            tensors[i].State.MarkParameterWritten(w[i]);
            tensors[i].State.MarkSlotsWritten();
            FusedTensorSteps++;
        }
        GC.KeepAlive(tensors);
        return fused;
    }

    /// <inheritdoc />
    bool IFusedPlanSource.CanFuseState(Parameter parameter, ScalarType dtype)
    {
        var (_, state) = EntryOf(parameter);
        return Fused && SecondMomentRule.StateCanFuse(state, dtype);
    }

    /// <inheritdoc />
    FusedPlan IFusedPlanSource.Plan(Parameter parameter)
    {
        var (options, state) = EntryOf(parameter);
        return SecondMomentRule.Plan(options, state);
    }

    /// <inheritdoc />
    RuleState IFusedPlanSource.StateOf(Parameter parameter) => EntryOf(parameter).state;

    /// <summary>Checks a preset argument under the name the caller typed (e.g. alpha, momentum).</summary>
    private static void RequireUnit(double value, string name, bool hiOpen)
    {
        if (double.IsNaN(value) || value < 0 || value > 1 || (hiOpen && value == 1))
            throw new System.ArgumentOutOfRangeException(name, value, $"{name} must lie in [0, 1{(hiOpen ? ")" : "]")}; e.g. 0.9.");
    }

    /// <summary>Options with every convention off; the base of every preset.</summary>
    public static SecondMomentOptions BaseOptions(double lr) => new() {
        LearningRate = lr,
        Beta1 = 0,
        Beta2 = 1,
        Preconditioned = false,
        Epsilon = 0,
        EpsilonPlacement = Rules.EpsilonPlacement.OutsideRoot,
        ScaleFirstMoment = false,
        ScaleSecondMoment = false,
        BiasCorrection = false,
        WeightDecay = 0,
        DecoupledWeightDecay = false,
        Maximize = false,
        Nesterov = false,
        Dampening = 0,
        InitialAccumulator = 0,
        AmsGrad = false,
        MomentumPlacement = Rules.MomentumPlacement.BeforePreconditioner,
        LearningRateDecay = 0,
    };

    // ---------------- Paper forms (Algorithm 1 as written: no (1−β) scaling, ε = 0 pseudoinverse) ----------------

    /// <summary>Plain SGD: <c>w ← w − η·g</c> (give <paramref name="momentum"/> for heavy ball).</summary>
    public static GenericSecondMomentOptimizer Sgd(IEnumerable<Parameter> parameters, double lr, double momentum = 0, double weight_decay = 0)
    {
        var o = BaseOptions(lr);
        o.Beta1 = momentum;
        o.WeightDecay = weight_decay;
        return new(parameters, o);
    }

    /// <summary>Heavy-ball SGD (the paper's "SGD"): <c>m1 ← β1·m1 + g; w ← w − η·m1</c>.</summary>
    public static GenericSecondMomentOptimizer HeavyBall(IEnumerable<Parameter> parameters, double lr, double momentum = 0.9, double weight_decay = 0)
        => Sgd(parameters, lr, momentum, weight_decay);

    /// <summary>AdaGrad with momentum (paper form): <c>m2 ← m2 + g²; w ← w − η·m1/√m2</c>, ε = 0 pseudoinverse.</summary>
    public static GenericSecondMomentOptimizer AdaGrad(IEnumerable<Parameter> parameters, double lr, double momentum = 0.9, double eps = 0, double weight_decay = 0)
    {
        var o = BaseOptions(lr);
        o.Beta1 = momentum;
        o.Beta2 = 1;
        o.Preconditioned = true;
        o.Epsilon = eps;
        o.EpsilonPlacement = Rules.EpsilonPlacement.InsideRoot;
        o.WeightDecay = weight_decay;
        return new(parameters, o);
    }

    /// <summary>RMSprop with momentum (paper form): <c>m2 ← β2·m2 + g²; w ← w − η·m1/√m2</c>.</summary>
    public static GenericSecondMomentOptimizer RmsProp(IEnumerable<Parameter> parameters, double lr, double momentum = 0.9, double beta2 = 0.999, double eps = 0, double weight_decay = 0)
    {
        var o = BaseOptions(lr);
        o.Beta1 = momentum;
        o.Beta2 = beta2;
        o.Preconditioned = true;
        o.Epsilon = eps;
        o.EpsilonPlacement = Rules.EpsilonPlacement.InsideRoot;
        o.WeightDecay = weight_decay;
        return new(parameters, o);
    }

    /// <summary>Adam (paper form, ε = 0): RMSprop's form with (1−β) scaling of both moments and bias correction.</summary>
    public static GenericSecondMomentOptimizer Adam(IEnumerable<Parameter> parameters, double lr, double beta1 = 0.9, double beta2 = 0.999, double eps = 0, double weight_decay = 0)
    {
        var o = BaseOptions(lr);
        o.Beta1 = beta1;
        o.Beta2 = beta2;
        o.Preconditioned = true;
        o.Epsilon = eps;
        o.ScaleFirstMoment = true;
        o.ScaleSecondMoment = true;
        o.BiasCorrection = true;
        o.WeightDecay = weight_decay;
        return new(parameters, o);
    }

    // ---------------- TorchSharp-compatible forms (same defaults and numbers as torch.optim.*) ----------------

    /// <summary>Reproduces <c>torch.optim.SGD</c>.</summary>
    public static GenericSecondMomentOptimizer TorchSgd(IEnumerable<Parameter> parameters, double lr, double momentum = 0, double dampening = 0, double weight_decay = 0, bool nesterov = false, bool maximize = false)
    {
        RequireUnit(momentum, nameof(momentum), hiOpen: true);
        var o = BaseOptions(lr);
        o.Beta1 = momentum;
        o.Dampening = dampening;
        o.WeightDecay = weight_decay;
        o.Nesterov = nesterov;
        o.Maximize = maximize;
        return new(parameters, o);
    }

    /// <summary>Options that reproduce <c>torch.optim.Adam</c>.</summary>
    public static SecondMomentOptions TorchAdamOptions(double lr = 1e-3, double beta1 = 0.9, double beta2 = 0.999, double eps = 1e-8, double weight_decay = 0, bool amsgrad = false, bool maximize = false)
    {
        var o = BaseOptions(lr);
        o.Beta1 = beta1;
        o.Beta2 = beta2;
        o.Preconditioned = true;
        o.Epsilon = eps;
        o.EpsilonPlacement = Rules.EpsilonPlacement.OutsideRoot;
        o.ScaleFirstMoment = true;
        o.ScaleSecondMoment = true;
        o.BiasCorrection = true;
        o.WeightDecay = weight_decay;
        o.AmsGrad = amsgrad;
        o.Maximize = maximize;
        return o;
    }

    /// <summary>Reproduces <c>torch.optim.Adam</c> (a drop-in replacement).</summary>
    public static GenericSecondMomentOptimizer TorchAdam(IEnumerable<Parameter> parameters, double lr = 1e-3, double beta1 = 0.9, double beta2 = 0.999, double eps = 1e-8, double weight_decay = 0, bool amsgrad = false, bool maximize = false)
        => new(parameters, TorchAdamOptions(lr, beta1, beta2, eps, weight_decay, amsgrad, maximize));

    /// <summary>
    /// AMSGrad (Reddi, Kale and Kumar, 2018, "On the Convergence of Adam and Beyond"): Adam dividing by the running
    /// maximum of the second moment; reproduces <c>torch.optim.Adam(..., amsgrad: true)</c>.
    /// </summary>
    /// <remarks>
    /// <code>
    /// m ← β1·m + (1−β1)·g;  v ← β2·v + (1−β2)·g²;  v̂ ← max(v̂, v)
    /// w ← w − η · (m / (1−β1^t)) / (√(v̂ / (1−β2^t)) + ε)
    /// </code>
    /// </remarks>
    public static GenericSecondMomentOptimizer AmsGrad(IEnumerable<Parameter> parameters, double lr = 1e-3, double beta1 = 0.9, double beta2 = 0.999, double eps = 1e-8, double weight_decay = 0, bool maximize = false)
        => TorchAdam(parameters, lr, beta1, beta2, eps, weight_decay, amsgrad: true, maximize: maximize);

    /// <summary>Reproduces <c>torch.optim.AdamW</c> (decoupled weight decay).</summary>
    public static GenericSecondMomentOptimizer TorchAdamW(IEnumerable<Parameter> parameters, double lr = 1e-3, double beta1 = 0.9, double beta2 = 0.999, double eps = 1e-8, double weight_decay = 0.01, bool amsgrad = false, bool maximize = false)
    {
        var o = TorchAdamOptions(lr, beta1, beta2, eps, weight_decay, amsgrad, maximize);
        o.DecoupledWeightDecay = true;
        return new(parameters, o);
    }

    /// <summary>Reproduces <c>torch.optim.Adagrad</c>.</summary>
    public static GenericSecondMomentOptimizer TorchAdagrad(IEnumerable<Parameter> parameters, double lr = 1e-2, double lr_decay = 0, double weight_decay = 0, double initial_accumulator_value = 0, double eps = 1e-10)
    {
        var o = BaseOptions(lr);
        o.Beta2 = 1;
        o.Preconditioned = true;
        o.Epsilon = eps;
        o.EpsilonPlacement = Rules.EpsilonPlacement.OutsideRoot;
        o.LearningRateDecay = lr_decay;
        o.WeightDecay = weight_decay;
        o.InitialAccumulator = initial_accumulator_value;
        return new(parameters, o);
    }

    /// <summary>Reproduces <c>torch.optim.RMSprop</c> (not centered): momentum of preconditioned gradients.</summary>
    public static GenericSecondMomentOptimizer TorchRmsProp(IEnumerable<Parameter> parameters, double lr = 1e-2, double alpha = 0.99, double eps = 1e-8, double weight_decay = 0, double momentum = 0, bool maximize = false)
    {
        RequireUnit(alpha, nameof(alpha), hiOpen: false);
        RequireUnit(momentum, nameof(momentum), hiOpen: true);
        var o = BaseOptions(lr);
        o.Beta1 = momentum;
        o.Beta2 = alpha;
        o.Preconditioned = true;
        o.Epsilon = eps;
        o.EpsilonPlacement = Rules.EpsilonPlacement.OutsideRoot;
        o.ScaleSecondMoment = true;
        o.MomentumPlacement = Rules.MomentumPlacement.AfterPreconditioner;
        o.WeightDecay = weight_decay;
        o.Maximize = maximize;
        return new(parameters, o);
    }

    /// <summary>The parameters this optimizer manages, in group order.</summary>
    public IReadOnlyList<Parameter> Parameters => _parameter_groups.SelectMany(g => g.Parameters).ToList();
}
