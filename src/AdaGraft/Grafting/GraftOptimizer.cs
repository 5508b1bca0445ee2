using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using AdaGraft.Optimizers;
using AdaGraft.Rules;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.optim;

namespace AdaGraft.Grafting;

/// <summary>
/// AdaGraft (Algorithms 2 and 3 of Agarwal, Anil, Hazan, Koren and Zhang, 2020, "Disentangling Adaptive Gradient
/// Methods from Learning Rates"): each step takes its norm from the magnitude optimizer M and its direction from
/// the direction optimizer D, both given the same gradient at the same iterate.
/// </summary>
/// <remarks>
/// <code>
/// g   ← ∇f(w)                       (one gradient; p.grad is never modified)
/// ΔM  ← M(w, g) − w,  ΔD ← D(w, g) − w   (both advance their own state)
/// w   ← w + ‖ΔM‖ / ‖ΔD‖ · ΔD       (per tensor, per block or global; ratio 0 where ‖ΔD‖ = 0)
/// </code>
/// <para>Closed form (both children are <see cref="IProposingOptimizer"/>s, e.g.
/// <see cref="GenericSecondMomentOptimizer"/>): the proposals are computed without touching the parameters.
/// Black box (Algorithm 3, any TorchSharp optimizer that updates in place): w is saved to a scratch buffer allocated
/// once, M steps, ΔM is measured, w is restored, D steps, ΔD is measured, and the two are combined. Both paths give
/// the same numbers.</para>
/// <para>The learning rate, and so any LR scheduler attached to the graft, belongs to M: <c>ParamGroups</c> are M's.
/// D's learning rate cancels out; on the black-box path keep it at 1 (or any value where D's step is well above the
/// parameters' round-off) so that <c>D(w) − w</c> is measured precisely (paper, section C.1).</para>
/// </remarks>
public sealed class GraftOptimizer : OptimizerHelper, IMomentum, IBetas, IOptimizerCheckpoint
{
    private readonly Optimizer _magnitude;
    private readonly Optimizer _direction;
    private readonly IProposingOptimizer? _closedM;
    private readonly IProposingOptimizer? _closedD;
    private readonly Parameter[] _params;
    private readonly Tensor?[] _saved;
    private readonly Tensor?[] _work;
    private readonly Tensor?[] _momentum;
    private readonly Dictionary<ScalarType, Tensor> _fusedScratch = new();
    private readonly FusedCpu.WriteMark?[] _marks;
    private Tensor?[]? _momentumBackup;
    private bool _skipNonFinite;
    private Tensor? _skipped;
    private GraftStepNorms? _last;
    private bool _disposed;

    /// <summary>Grafts <paramref name="magnitude"/>'s step norms onto <paramref name="direction"/>'s step directions.</summary>
    /// <param name="magnitude">M: supplies ‖Δ‖ (and the learning rate).</param>
    /// <param name="direction">D: supplies Δ/‖Δ‖. Must manage the same parameters in the same order as M.</param>
    /// <param name="options">Granularity, ε, path and ownership; defaults to per-tensor, ε = 0, automatic path.</param>
    public GraftOptimizer(Optimizer magnitude, Optimizer direction, GraftOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(magnitude);
        ArgumentNullException.ThrowIfNull(direction);
        options ??= new GraftOptions();
        options.Validate();
        if (ReferenceEquals(magnitude, direction))
            throw new ArgumentException("The same optimizer instance was passed as magnitude and direction; build two instances (they keep separate state).", nameof(direction));
        ThrowIfChildDisposed(magnitude, nameof(magnitude));
        ThrowIfChildDisposed(direction, nameof(direction));

        var pm = magnitude.parameters().ToArray();
        var pd = direction.parameters().ToArray();
        if (pm.Length == 0)
            throw new ArgumentException("The magnitude optimizer manages no parameters.", nameof(magnitude));
        for (int i = 0; i < Math.Max(pm.Length, pd.Length); i++) {
            if (i >= pm.Length || i >= pd.Length)
                throw new ArgumentException($"M manages {pm.Length} parameters but D manages {pd.Length}; the first difference is at parameter {i}. Build both over the same parameters in the same order.", nameof(direction));
            if (pm[i].Handle != pd[i].Handle)
                throw new ArgumentException($"Parameter {i} differs: M has a tensor of shape [{string.Join(", ", pm[i].shape)}], D has a different tensor of shape [{string.Join(", ", pd[i].shape)}]. Build both over the same parameters in the same order.", nameof(direction));
        }
        var mGroups = magnitude.ParamGroups.ToList();
        var dGroups = direction.ParamGroups.ToList();
        if (mGroups.Count != dGroups.Count)
            throw new ArgumentException($"M has {mGroups.Count} parameter groups but D has {dGroups.Count}; give both the same group structure.", nameof(direction));
        if (options.Granularity == GraftGranularity.PerBlock) {
            for (int i = 0; i < pm.Length; i++) {
                if (!pm[i].is_contiguous())
                    throw new ArgumentException($"Parameter {i} is not contiguous; per-block grafting needs contiguous parameters.", nameof(magnitude));
            }
        }

        bool closedAvailable = magnitude is IProposingOptimizer && direction is IProposingOptimizer;
        if (options.Path == GraftPath.ClosedForm && !closedAvailable)
            throw new ArgumentException("The closed-form path needs both children to be AdaGraft rule-based optimizers (IProposingOptimizer); use GraftPath.BlackBox or Auto.", nameof(options));
        bool closed = options.Path == GraftPath.ClosedForm || (options.Path == GraftPath.Auto && closedAvailable);
        if (options.Point == GraftPoint.BeforeMomentum) {
            if (!closed)
                throw new ArgumentException("GraftPoint.BeforeMomentum needs both children to be AdaGraft rule-based optimizers (closed-form path).", nameof(options));
            foreach (var (child, name) in new[] { (magnitude, nameof(magnitude)), (direction, nameof(direction)) }) {
                if (child.ParamGroups.OfType<IMomentum>().Any(g => g.Momentum != 0))
                    throw new ArgumentException($"With GraftPoint.BeforeMomentum the graft applies the momentum; build the {name} optimizer with momentum 0.", name);
            }
        }

        _magnitude = magnitude;
        _direction = direction;
        _closedM = closed ? (IProposingOptimizer)magnitude : null;
        _closedD = closed ? (IProposingOptimizer)direction : null;
        _params = pm;
        _saved = new Tensor?[pm.Length];
        _work = new Tensor?[pm.Length];
        _momentum = new Tensor?[pm.Length];
        _marks = new FusedCpu.WriteMark?[pm.Length];
        Options = options;
        // TorchSharp's OptimizerHelper.to(Device) is not virtual: called through an OptimizerHelper reference it walks
        // _parameter_groups and _state. One internal group over the grafted parameters and one state per parameter,
        // the first of which moves the whole graft, make that call do what GraftOptimizer.to does (the group is not
        // exposed: ParamGroups are M's, and state_dict, zero_grad and parameters are overridden).
        _parameter_groups = new List<TorchSharp.Modules.ParamGroup> { new() { Parameters = pm, Options = new OptimizerOptions { LearningRate = 0 } } };
        for (int i = 0; i < pm.Length; i++) _state[pm[i].Handle] = new MoveAll(pm[i], i == 0 ? this : null);
    }

    /// <summary>The options this graft was built with.</summary>
    public GraftOptions Options { get; }

    /// <summary>M, the magnitude optimizer.</summary>
    public Optimizer Magnitude => _magnitude;

    /// <summary>D, the direction optimizer.</summary>
    public Optimizer Direction => _direction;

    /// <summary>True when steps use the closed-form path, false for the black-box path.</summary>
    public bool IsClosedForm => _closedM is not null;

    /// <summary>Raised after every step, once <see cref="LastNorms"/> holds that step's norms (used by recorders).</summary>
    public event Action<GraftOptimizer>? Stepped;

    /// <summary>The norms of the last step (device tensors; null before the first step).</summary>
    public GraftStepNorms? LastNorms => _last;

    /// <summary>M's parameter groups: LR schedulers on the graft drive M's learning rate.</summary>
    public override IEnumerable<ILearningRateController> ParamGroups => _magnitude.ParamGroups;

    /// <summary>
    /// Off (default): non-finite gradients flow through as in <c>torch.optim</c>. On (closed-form path only): a step
    /// whose gradient has a NaN or Inf changes neither the parameters nor either child's state nor the graft's own
    /// momentum, decided on the device without a host synchronisation; <see cref="SkippedSteps"/> counts them.
    /// </summary>
    public bool SkipNonFiniteSteps {
        get => _skipNonFinite;
        set {
            ThrowIfDisposed();
            if (value && !IsClosedForm)
                throw new NotSupportedException("SkipNonFiniteSteps needs the closed-form path (rule-based children): a black-box child's state cannot be restored on the device.");
            if (value) NonFinite.RequireOneDevice(_params);
            _skipNonFinite = value;
            ((IGuardedProposer)_magnitude).UseAppliedSteps(value);
            ((IGuardedProposer)_direction).UseAppliedSteps(value);
        }
    }

    /// <summary>Skipped steps so far (reads a device counter: a host synchronisation).</summary>
    public long SkippedSteps => _skipped is null ? 0 : (long)_skipped.item<double>();

    /// <summary>M's momentum (β1), for schedulers that cycle momentum.</summary>
    public double Momentum {
        get => MagnitudeAs<IMomentum>().Momentum;
        set => MagnitudeAs<IMomentum>().Momentum = value;
    }

    /// <summary>M's (β1, β2), for schedulers that cycle betas.</summary>
    public (double, double) Betas {
        get => MagnitudeAs<IBetas>().Betas;
        set => MagnitudeAs<IBetas>().Betas = value;
    }

    private T MagnitudeAs<T>() where T : class =>
        _magnitude as T ?? throw new NotSupportedException($"The magnitude optimizer ({_magnitude.GetType().Name}) has no {typeof(T).Name}; a scheduler cannot cycle it.");

    /// <summary>The grafted parameters (M's, in order).</summary>
    public override IEnumerable<Parameter> parameters() => _params;

    /// <summary>Not supported: add the group to both children before building the graft.</summary>
    public override void add_param_group(TorchSharp.Modules.ParamGroup param_group) =>
        throw new NotSupportedException("Add parameter groups to M and D, then build a new GraftOptimizer over them.");

    /// <summary>Sets every parameter's gradient to zero.</summary>
    public override void zero_grad()
    {
        ThrowIfDisposed();
        foreach (var p in _params) {
            using var grad = p.grad;
            grad?.zero_();
        }
    }

    /// <summary>
    /// One grafted step. The closure, if given, is evaluated once (with gradients enabled) and its loss returned;
    /// both children then see the same gradients.
    /// </summary>
    public override Tensor step(Func<Tensor>? closure = null)
    {
        ThrowIfDisposed();
        ThrowIfChildDisposed(_magnitude, "magnitude");
        ThrowIfChildDisposed(_direction, "direction");
        Tensor? loss = null;
        if (closure is not null) {
            using var _ = torch.enable_grad();
            loss = closure();
        }
        ValidateForStep();

        using (torch.no_grad())
        using (var scope = torch.NewDisposeScope()) {
            var next = !IsClosedForm ? TryFusedBlackBoxStep() ?? BlackBoxStep() : _skipNonFinite ? GuardedClosedFormStep() : TryFusedStep() ?? ClosedFormStep();
            next.DetachAll();
            _last?.Dispose();
            _last = next.Build();
        }
        Stepped?.Invoke(this);
        return loss!;
    }

    /// <summary>
    /// Everything a step checks before it changes anything, the same for every path: rule-based children check their
    /// options, the gradients (dtype, device, shape), their states' fit and shared memory themselves; for built-in
    /// children the graft checks the gradients and shared memory (a built-in child's own state is checked by its own
    /// step: if that throws, the parameters are restored); and the graft's own momentum must still fit.
    /// </summary>
    private void ValidateForStep()
    {
        if (IsClosedForm) {
            _closedM!.ValidateForStep();
            _closedD!.ValidateForStep();
        } else {
            for (int i = 0; i < _params.Length; i++) GradientChecks.Check(_params[i], i);
            GradientChecks.CheckDisjoint(_params);
            // A rule-based child on the black-box path checks its own state before the graft saves anything.
            (_magnitude as IProposingOptimizer)?.ValidateForStep();
            (_direction as IProposingOptimizer)?.ValidateForStep();
        }
        for (int i = 0; i < _params.Length; i++) {
            if (_momentum[i] is not Tensor m) continue;
            var p = _params[i];
            if (m.dtype != p.dtype || m.device_type != p.device_type || m.device_index != p.device_index || !m.shape.SequenceEqual(p.shape))
                throw new InvalidOperationException(
                    $"The graft's momentum of the {GradientChecks.Describe(p, i)} is {m.dtype} {GradientChecks.Shape(m.shape)} on {m.device}, but "
                    + $"the parameter is now {p.dtype} on {p.device}: it was resized, replaced (set_) or converted after the graft was built. "
                    + "Build a new graft over the changed parameters.");
        }
    }

    /// <summary>A scratch buffer of the graft: reused while it still has <paramref name="like"/>'s shape, dtype and device.</summary>
    private static Tensor Fit(ref Tensor? buffer, Tensor like, ScalarType? dtype = null)
    {
        var want = dtype ?? like.dtype;
        if (buffer is Tensor b && b.dtype == want && b.device_type == like.device_type && b.device_index == like.device_index && b.shape.SequenceEqual(like.shape))
            return b;
        buffer?.Dispose();
        buffer = torch.empty(like.shape, want, like.device).DetachFromDisposeScope();
        return buffer;
    }

    private sealed class Measured
    {
        public Tensor?[] M = Array.Empty<Tensor?>();
        public Tensor?[] D = Array.Empty<Tensor?>();
        public Tensor?[] R = Array.Empty<Tensor?>();
        public Tensor GM = null!, GD = null!, GR = null!;
        public HostStepNorms? Host;

        public void DetachAll()
        {
            if (Host is not null) return;
            foreach (var t in M.Concat(D).Concat(R)) t?.DetachFromDisposeScope();
            GM.DetachFromDisposeScope();
            GD.DetachFromDisposeScope();
            GR.DetachFromDisposeScope();
        }

        public GraftStepNorms Build() => Host is null ? new(M, D, R, GM, GD, GR) : new(Host);
    }

    private static bool IsLowPrecision(Tensor t) => t.dtype is ScalarType.Float16 or ScalarType.BFloat16;

    private long BlockSize => Options.Granularity == GraftGranularity.PerBlock ? Options.BlockSize : 0;

    /// <summary>The 2-d views [segments, elements] of a flat tensor: one row, or full blocks plus a tail.</summary>
    private static Tensor[] Segments(Tensor flat, long blockSize)
    {
        long n = flat.shape[0];
        if (blockSize <= 0 || n <= blockSize) return new[] { flat.view(1, n) };
        long k = n / blockSize, r = n % blockSize;
        var full = flat.narrow(0, 0, k * blockSize).view(k, blockSize);
        return r == 0 ? new[] { full } : new[] { full, flat.narrow(0, k * blockSize, r).view(1, r) };
    }

    /// <summary>|factor|·‖u‖ per segment, as a 1-d tensor (float32 or wider).</summary>
    private Tensor SegmentNorms(Tensor u, double factor)
    {
        var x = IsLowPrecision(u) ? u.to_type(ScalarType.Float32) : u;
        Tensor norms;
        if (BlockSize > 0) {
            var views = Segments(x.reshape(-1), BlockSize);
            norms = views.Length == 1 ? views[0].norm(1) : torch.cat(views.Select(v => v.norm(1)).ToArray(), 0);
        } else {
            norms = x.norm().view(1);
        }
        return factor == 1 ? norms : norms.mul_(Math.Abs(factor));
    }

    /// <summary>ratio = m / d with 0 where d = 0 (or m / (d + ε)).</summary>
    private Tensor Ratio(Tensor m, Tensor d)
    {
        if (Options.Epsilon > 0) return m / (d + Options.Epsilon);
        return d.reciprocal().nan_to_num_(0, 0, 0).mul_(m);
    }

    /// <summary>Per-tensor and global norms and ratios from per-tensor segment norms.</summary>
    private Measured Combine(Tensor?[] m, Tensor?[] d)
    {
        var present = Enumerable.Range(0, m.Length).Where(i => m[i] is not null).ToArray();
        var res = new Measured { M = m, D = d, R = new Tensor?[m.Length] };
        if (present.Length == 0) {
            res.GM = torch.zeros(1);
            res.GD = torch.zeros(1);
            res.GR = torch.zeros(1);
            return res;
        }
        var dtype = present.Select(i => m[i]!.dtype).Contains(ScalarType.Float64) ? ScalarType.Float64 : ScalarType.Float32;
        // Global norms are gathered on the first tensor's device (a model split over devices still gets one ratio).
        var first = m[present[0]]!;
        var (deviceType, deviceIndex) = (first.device_type, first.device_index);
        // The usual case (one dtype, one device) needs no conversions, and the per-tensor ratios are computed in one
        // go and handed out as views: a few calls per step instead of a few per tensor (what a GPU step's host time is).
        bool uniform = present.All(i => m[i]!.dtype == dtype && m[i]!.device_type == deviceType && m[i]!.device_index == deviceIndex);
        var device = first.device;
        Tensor Gather(Tensor?[] x) => torch.cat(present.Select(i => uniform ? x[i]! : x[i]!.to(dtype, device)).ToArray(), 0);
        var mAll = Gather(m);
        var dAll = Gather(d);
        res.GM = mAll.norm();
        res.GD = dAll.norm();
        res.GR = Ratio(res.GM, res.GD);
        if (Options.Granularity == GraftGranularity.Global) {
            foreach (var i in present) res.R[i] = uniform ? res.GR.view(1) : res.GR.to(m[i]!.dtype, m[i]!.device).view(1);
        } else if (uniform) {
            var rAll = Ratio(mAll, dAll);
            long at = 0;
            foreach (var i in present) {
                long len = m[i]!.shape[0];
                res.R[i] = rAll.narrow(0, at, len);
                at += len;
            }
        } else {
            foreach (var i in present) res.R[i] = Ratio(m[i]!, d[i]!);
        }
        return res;
    }

    /// <summary>The ratio to multiply a whole tensor with (0-d), or the per-segment column for blocks.</summary>
    private static Tensor Column(Tensor ratio) => ratio.unsqueeze(1);

    private Measured ClosedFormStep()
    {
        int n = _params.Length;
        var uD = new Tensor?[n];
        var fD = new double[n];
        var mNorms = new Tensor?[n];
        var dNorms = new Tensor?[n];
        for (int i = 0; i < n; i++) {
            var p = _params[i];
            var grad = p.grad;
            if (grad is null) continue;
            var propM = _closedM!.Propose(p, grad);
            var um = propM.Materialize(p, WorkFor(propM, i, forM: true), out double fm);
            mNorms[i] = SegmentNorms(um, fm);
            var propD = _closedD!.Propose(p, grad);
            uD[i] = propD.Materialize(p, WorkFor(propD, i, forM: false), out fD[i]);
            dNorms[i] = SegmentNorms(uD[i]!, fD[i]);
        }
        var measured = Combine(mNorms, dNorms);
        bool beforeMomentum = Options.Point == GraftPoint.BeforeMomentum;
        for (int i = 0; i < n; i++) {
            if (uD[i] is null) continue;
            var p = _params[i];
            Tensor target = p;
            if (beforeMomentum) {
                target = _momentum[i] ??= torch.zeros_like(p).DetachFromDisposeScope();
                target.mul_(Options.Momentum);
            }
            if (fD[i] != 0) AddScaled(target, uD[i]!, measured.R[i]!, fD[i]);
            if (beforeMomentum) p.add_(target);
        }
        return measured;
    }

    /// <summary>
    /// The closed-form step in two fused CPU passes (see <see cref="GraftOptions.FusedCpuKernel"/>), or null, having
    /// changed nothing, when some tensor or child does not qualify.
    /// </summary>
    private Measured? TryFusedStep()
    {
        if (!Fused || _magnitude is not GenericSecondMomentOptimizer gm || _direction is not GenericSecondMomentOptimizer gd)
            return null;
        int n = _params.Length;
        bool beforeMomentum = Options.Point == GraftPoint.BeforeMomentum;
        // The gradient and both children's states must fit too, and the graft's own buffers where they exist.
        bool Fits(int i, Parameter p, Tensor grad, ScalarType dtype) =>
            FusedCpu.Eligible(grad, dtype) && gm.CanFuseState(p, dtype) && gd.CanFuseState(p, dtype)
            && (!beforeMomentum || _momentum[i] is not Tensor b || FusedCpu.Eligible(b, dtype))
            && (_saved[i] is not Tensor s || FusedCpu.Eligible(s, dtype));
        if (FusedCandidates(Fits) is not var (grads, dtypes, numels)) return null;

        // Nothing has changed so far; from here on both children advance.
        // Per tensor and per block, each tensor is proposed, measured and applied before the next one, through one
        // scratch buffer per dtype: ΔD is read back while it is still in cache. Global grafting needs every norm
        // before any step, so ΔD goes to a buffer per tensor.
        bool interleave = Options.Granularity != GraftGranularity.Global;
        var active = Array.ConvertAll(grads, x => x is not null);
        var layout = new FusedLayout(active, numels, dtypes, BlockSize, HostRatio, interleave ? GroupElements : 0);
        var items = layout.Items;
        var mPlans = new FusedPlan[n];
        var dPlans = new FusedPlan[n];
        var w = new IntPtr[n];
        var g = new IntPtr[n];
        var o = new IntPtr[n];
        var mom = new IntPtr[n];
        // One shared ΔD buffer per dtype, as large as the largest group of such tensors (a group: one tensor, or several
        // small ones swept together); each tensor writes at its offset in its group.
        var scratch = new Dictionary<ScalarType, IntPtr>();
        IntPtr ScratchPointer(ScalarType dtype, long offset)
        {
            if (!scratch.TryGetValue(dtype, out var ptr)) scratch[dtype] = ptr = FusedCpu.Pointer(SharedScratch(dtype, layout.LargestGroup[dtype]));
            return ptr + (nint)(offset * (dtype == ScalarType.Float32 ? sizeof(float) : sizeof(double)));
        }
        for (int i = 0; i < n; i++) {
            if (!active[i]) continue;
            var p = _params[i];
            mPlans[i] = gm.Plan(p);
            dPlans[i] = gd.Plan(p);
            w[i] = FusedCpu.Pointer(p);
            g[i] = FusedCpu.Pointer(grads[i]!);
            o[i] = interleave ? ScratchPointer(dtypes[i], layout.OffsetInGroup[i]) : FusedCpu.Pointer(Fit(ref _saved[i], p));
            if (beforeMomentum) mom[i] = FusedCpu.Pointer(_momentum[i] ??= torch.zeros_like(p).DetachFromDisposeScope());
        }

        double mu = Options.Momentum;
        void Propose(int from, int to, long elements) => FusedCpu.Run(to - from, elements, k => {
            int j = from + k;
            var (t, start, length, _) = items[j];
            (layout.SumM[j], layout.SumD[j]) = dtypes[t] == ScalarType.Float32
                ? FusedCpu.Propose<float>(mPlans[t], dPlans[t], w[t], g[t], o[t], start, start + length, streamOut: !interleave)
                : FusedCpu.Propose<double>(mPlans[t], dPlans[t], w[t], g[t], o[t], start, start + length, streamOut: !interleave);
        });
        void Apply(int from, int to, long elements) => FusedCpu.Run(to - from, elements, k => {
            var (t, start, length, segment) = items[from + k];
            if (dtypes[t] == ScalarType.Float32) FusedCpu.Apply<float>(w[t], o[t], mom[t], layout.Ratio[segment], mu, start, start + length);
            else FusedCpu.Apply<double>(w[t], o[t], mom[t], layout.Ratio[segment], mu, start, start + length);
        });

        layout.Sweep(global: !interleave, Propose, Apply);
        // The kernels wrote through data pointers: advance the version counters as eager in-place ops would, and keep
        // every tensor whose address they used alive until here.
        for (int i = 0; i < n; i++) {
            if (!active[i]) continue;
            var mState = gm.EntryOf(_params[i]).state;
            mState.MarkParameterWritten(w[i]);
            mState.MarkSlotsWritten();
            gd.EntryOf(_params[i]).state.MarkSlotsWritten();
            if (beforeMomentum) FusedCpu.MarkWritten(_momentum[i]!);
        }
        GC.KeepAlive(grads);
        GC.KeepAlive(_saved);
        GC.KeepAlive(_fusedScratch);
        FusedSteps++;
        return new Measured { Host = layout.Build() };
    }

    /// <summary>
    /// The tensors a fused step works on: each parameter with a gradient, its gradient, dtype and size — or null when
    /// none has a gradient, or when one of them is not a contiguous float32/float64 CPU tensor or fails
    /// <paramref name="fits"/> (index, parameter, gradient, dtype). Nothing changes here.
    /// </summary>
    private (Tensor?[] grads, ScalarType[] dtypes, long[] numels)? FusedCandidates(Func<int, Parameter, Tensor, ScalarType, bool> fits)
    {
        int n = _params.Length;
        var grads = new Tensor?[n];
        var dtypes = new ScalarType[n];
        var numels = new long[n];
        bool any = false;
        for (int i = 0; i < n; i++) {
            var p = _params[i];
            var grad = p.grad;
            if (grad is null) continue;
            var dtype = p.dtype;
            if (!FusedCpu.Eligible(p, dtype) || !fits(i, p, grad, dtype)) return null;
            grads[i] = grad;
            dtypes[i] = dtype;
            numels[i] = p.numel();
            any = true;
        }
        return any ? (grads, dtypes, numels) : null;
    }

    /// <summary>The fused path's ΔD buffer for <paramref name="dtype"/>, of at least <paramref name="need"/> elements (kept between steps).</summary>
    private Tensor SharedScratch(ScalarType dtype, long need)
    {
        if (_fusedScratch.TryGetValue(dtype, out var t) && t.numel() >= need) return t;
        t?.Dispose();
        t = torch.empty(need, dtype).DetachFromDisposeScope();
        _fusedScratch[dtype] = t;
        return t;
    }

    /// <summary>
    /// Per tensor or block, small consecutive tensors are swept together up to this many elements (1 MiB of float32):
    /// one parallel loop per pass for many small tensors, and the group's ΔD still in cache when it is applied.
    /// </summary>
    private const long GroupElements = 1 << 18;

    /// <summary>How many steps took the fused CPU path (diagnostics and tests).</summary>
    internal long FusedSteps { get; private set; }

    /// <summary>The one place the graft decides: its option and the process-wide switch (<see cref="CpuSwitches.FusedKernels"/>).</summary>
    private bool Fused => CpuSwitches.Fused(Options.FusedCpuKernel);

    /// <summary>ratio = m / d with 0 where d = 0 (or m / (d + ε)), on the host.</summary>
    private double HostRatio(double m, double d)
    {
        if (Options.Epsilon > 0) return m / (d + Options.Epsilon);
        return HostStepNorms.RatioOf(m, d);
    }

    /// <summary>
    /// target += factor · ratio ⊙ u, the ratio taken per tensor or per block. Half-precision targets get the step
    /// computed in float32 (one temporary) and rounded once.
    /// </summary>
    private void AddScaled(Tensor target, Tensor u, Tensor r, double factor)
    {
        if (IsLowPrecision(target)) {
            using var u32 = u.to_type(ScalarType.Float32);
            ScaleSegments(u32, r);
            target.add_(u32, factor);
            return;
        }
        if (BlockSize > 0) {
            var tv = Segments(target.view(-1), BlockSize);
            var uv = Segments(u.reshape(-1), BlockSize);
            long at = 0;
            for (int s = 0; s < tv.Length; s++) {
                long rows = tv[s].shape[0];
                tv[s].addcmul_(uv[s], Column(r.narrow(0, at, rows)).to_type(target.dtype), factor);
                at += rows;
            }
        } else {
            // A one-element ratio broadcasts against any tensor of rank ≥ 1; a 0-d target needs a 0-d ratio.
            var rr = target.dim() == 0 ? r.view(Array.Empty<long>()) : r;
            target.addcmul_(u, rr.dtype == target.dtype ? rr : rr.to_type(target.dtype), factor);
        }
    }

    /// <summary>x ⊙= ratio, per tensor or per block (x contiguous, float32 or wider).</summary>
    private void ScaleSegments(Tensor x, Tensor r)
    {
        if (BlockSize > 0) {
            long at = 0;
            foreach (var v in Segments(x.view(-1), BlockSize)) {
                long rows = v.shape[0];
                v.mul_(Column(r.narrow(0, at, rows)).to_type(x.dtype));
                at += rows;
            }
        } else {
            x.mul_(r.view(Array.Empty<long>()).to_type(x.dtype));
        }
    }

    private Measured GuardedClosedFormStep()
    {
        var active = Enumerable.Range(0, _params.Length).Where(i => _params[i].grad is not null).ToArray();
        if (active.Length == 0) return ClosedFormStep();
        var ok = NonFinite.AllFinite(active.Select(i => _params[i].grad!));
        var gm = (IGuardedProposer)_magnitude;
        var gd = (IGuardedProposer)_direction;
        _momentumBackup ??= new Tensor?[_params.Length];
        foreach (int i in active) {
            gm.GuardStateOf(_params[i]).Backup();
            gd.GuardStateOf(_params[i]).Backup();
            if (_momentum[i] is Tensor m) (_momentumBackup[i] ??= torch.empty_like(m).DetachFromDisposeScope()).copy_(m);
        }
        var measured = ClosedFormStep();
        foreach (int i in active) {
            gm.GuardStateOf(_params[i]).KeepIf(ok);
            gd.GuardStateOf(_params[i]).KeepIf(ok);
            if (_momentum[i] is Tensor m) {
                var old = _momentumBackup[i];
                if (old is null) m.copy_(torch.where(ok, m, torch.zeros_like(m)));
                else m.copy_(torch.where(ok, m, old));
            }
        }
        _skipped ??= torch.zeros(Array.Empty<long>(), ScalarType.Float64, ok.device).DetachFromDisposeScope();
        _skipped.add_(ok.logical_not().to_type(ScalarType.Float64));
        return measured;
    }

    /// <summary>The buffer a proposal is materialised into: its own multiplier/divisor, or a graft work buffer.</summary>
    private Tensor WorkFor(Proposal prop, int i, bool forM)
    {
        if (prop.Multiplier is not null) return prop.Multiplier;
        if (prop.Divisor is not null) return prop.Divisor;
        // Only needed when a decoupled decay term must be folded in; M and D need distinct buffers.
        if (forM) return Fit(ref _work[i], _params[i]);
        return Fit(ref _saved[i], _params[i]);
    }

    private Measured BlackBoxStep()
    {
        int n = _params.Length;
        var active = new bool[n];
        for (int i = 0; i < n; i++) {
            var p = _params[i];
            using var grad = p.grad;
            if (grad is null) continue;
            active[i] = true;
            Fit(ref _saved[i], p, IsLowPrecision(p) ? ScalarType.Float32 : p.dtype).copy_(p);
        }

        var mNorms = new Tensor?[n];
        ChildStep(_magnitude, active);
        for (int i = 0; i < n; i++) {
            if (!active[i]) continue;
            var p = _params[i];
            var delta = Difference(p, _saved[i]!);
            mNorms[i] = SegmentNorms(delta, 1);
            p.copy_(_saved[i]!);
        }

        var dNorms = new Tensor?[n];
        var deltas = new Tensor?[n];
        ChildStep(_direction, active);
        for (int i = 0; i < n; i++) {
            if (!active[i]) continue;
            deltas[i] = Difference(_params[i], _saved[i]!);
            dNorms[i] = SegmentNorms(deltas[i]!, 1);
        }

        var measured = Combine(mNorms, dNorms);
        for (int i = 0; i < n; i++) {
            if (!active[i]) continue;
            var p = _params[i];
            var delta = deltas[i]!;
            ScaleSegments(delta, measured.R[i]!);
            delta.add_(_saved[i]!);
            if (!ReferenceEquals(delta, p)) p.copy_(delta);
        }
        return measured;
    }

    /// <summary>
    /// Algorithm 3 with fused CPU kernels when every parameter with a gradient is a contiguous float32/float64 CPU
    /// tensor: the children step in place as usual, but measuring M's step and restoring the parameters is one pass,
    /// and per tensor (or block) measuring D's step and combining run back to back while the tensor is still in cache.
    /// Returns null (nothing done) otherwise.
    /// </summary>
    /// <summary>
    /// After a black-box child's step: re-reads each parameter's address (a child may have given it new storage, and
    /// the kernels must never write through a stale pointer). A child that left a parameter unfit for the fused
    /// kernels (another dtype or device, strided) gets the parameters restored from the saved copy and a clear error.
    /// </summary>
    private void Repoint(bool[] active, ScalarType[] dtypes, long[] numels, IntPtr[] w, string child)
    {
        for (int i = 0; i < _params.Length; i++) {
            if (!active[i]) continue;
            var p = _params[i];
            if (!FusedCpu.Eligible(p, dtypes[i]) || p.numel() != numels[i]) {
                RestoreSaved(active);
                throw new InvalidOperationException(
                    $"The {child} optimizer turned the parameter of shape [{string.Join(", ", p.shape)}] from a contiguous {dtypes[i]} CPU tensor "
                    + $"into a{(p.is_contiguous() ? " contiguous" : " strided")} {p.dtype} tensor on {p.device}; a black-box graft needs children that "
                    + "update their parameters in place. The parameters were restored; the child's own state has advanced. "
                    + "Set GraftOptions.FusedCpuKernel = false to graft such an optimizer on the eager path.");
            }
            w[i] = FusedCpu.Pointer(p);
        }
    }

    /// <summary>
    /// A black-box child's step; if it throws, every parameter the step works on is restored from the saved copy
    /// (the child's own state may have advanced, as TorchSharp's optimizers leave it) and the exception goes on.
    /// </summary>
    private void ChildStep(Optimizer child, bool[] active)
    {
        try {
            child.step();
        } catch {
            RestoreSaved(active);
            throw;
        }
    }

    /// <summary>Copies the saved values back into every active parameter that still has the saved copy's size.</summary>
    private void RestoreSaved(bool[] active)
    {
        for (int j = 0; j < _params.Length; j++) {
            var q = _params[j];
            if (active[j] && _saved[j] is Tensor saved && q.numel() == saved.numel()) q.copy_(saved.view(q.shape));
        }
    }

    private Measured? TryFusedBlackBoxStep()
    {
        if (!Fused || FusedCandidates((_, _, _, _) => true) is not var (grads, dtypes, numels)) return null;
        int n = _params.Length;
        var active = Array.ConvertAll(grads, x => x is not null);

        var layout = new FusedLayout(active, numels, dtypes, BlockSize, HostRatio, GroupElements);
        var items = layout.Items;
        var w = new IntPtr[n];
        var s = new IntPtr[n];
        for (int i = 0; i < n; i++) {
            if (!active[i]) continue;
            var p = _params[i];
            if (_saved[i] is not Tensor saved || !FusedCpu.Eligible(saved, dtypes[i]) || saved.numel() != numels[i]) {
                _saved[i]?.Dispose();
                _saved[i] = saved = torch.empty_like(p).DetachFromDisposeScope();
            }
            w[i] = FusedCpu.Pointer(p);
            s[i] = FusedCpu.Pointer(saved);
        }
        // The save is a kernel too: streamed stores (the copy is next read after a whole child step), and no switch
        // from libtorch's OpenMP threads (which spin for a while after each libtorch operation) to ours in between.
        FusedCpu.Run(items.Count, layout.Total, j => {
            var (t, start, length, _) = items[j];
            if (dtypes[t] == ScalarType.Float32) FusedCpu.Save<float>(w[t], s[t], start, start + length);
            else FusedCpu.Save<double>(w[t], s[t], start, start + length);
        });

        ChildStep(_magnitude, active);
        Repoint(active, dtypes, numels, w, "magnitude");
        FusedCpu.Run(items.Count, layout.Total, j => {
            var (t, start, length, _) = items[j];
            layout.SumM[j] = dtypes[t] == ScalarType.Float32
                ? FusedCpu.MeasureAndRestore<float>(w[t], s[t], start, start + length)
                : FusedCpu.MeasureAndRestore<double>(w[t], s[t], start, start + length);
        });

        ChildStep(_direction, active);
        Repoint(active, dtypes, numels, w, "direction");
        void Measure(int from, int to, long elements) => FusedCpu.Run(to - from, elements, k => {
            int j = from + k;
            var (t, start, length, _) = items[j];
            layout.SumD[j] = dtypes[t] == ScalarType.Float32
                ? FusedCpu.Measure<float>(w[t], s[t], start, start + length)
                : FusedCpu.Measure<double>(w[t], s[t], start, start + length);
        });
        void Combine(int from, int to, long elements) => FusedCpu.Run(to - from, elements, k => {
            var (t, start, length, segment) = items[from + k];
            if (dtypes[t] == ScalarType.Float32) FusedCpu.Combine<float>(w[t], s[t], layout.Ratio[segment], start, start + length);
            else FusedCpu.Combine<double>(w[t], s[t], layout.Ratio[segment], start, start + length);
        });
        layout.Sweep(global: Options.Granularity == GraftGranularity.Global, Measure, Combine);
        for (int i = 0; i < n; i++) if (active[i]) (_marks[i] ??= new()).Mark(_params[i], w[i]);
        GC.KeepAlive(_saved);
        FusedSteps++;
        return new Measured { Host = layout.Build() };
    }

    /// <summary>p − saved: in place in p for float32/float64, in a float32 temporary for half precision.</summary>
    private static Tensor Difference(Parameter p, Tensor saved)
    {
        if (!IsLowPrecision(p)) {
            p.sub_(saved);
            return p;
        }
        return p.to_type(ScalarType.Float32).sub_(saved);
    }

    /// <summary>Moves both children's state (and the graft's scratch) to <paramref name="device"/>.</summary>
    public new void to(Device device)
    {
        ThrowIfDisposed();
        MoveChild(_magnitude, device);
        MoveChild(_direction, device);
        for (int i = 0; i < _momentum.Length; i++) {
            if (_momentum[i] is Tensor m) {
                _momentum[i] = m.to(device).DetachFromDisposeScope();
                if (!ReferenceEquals(_momentum[i], m)) m.Dispose();
            }
        }
        foreach (var t in _fusedScratch.Values) t.Dispose();
        _fusedScratch.Clear();
        for (int i = 0; i < _saved.Length; i++) {
            _saved[i]?.Dispose();
            _saved[i] = null;
            _work[i]?.Dispose();
            _work[i] = null;
        }
    }

    /// <summary>The per-parameter state TorchSharp's <c>OptimizerHelper.to</c> walks; the first one moves the graft.</summary>
    private sealed class MoveAll(Parameter parameter, GraftOptimizer? graft) : OptimizerState(parameter)
    {
        public override void to(Device device) => graft?.to(device);

        public override void Initialize(OptimizerOptions options) { }

        public override void SaveStateDict(BinaryWriter writer) => throw new NotSupportedException("Save the graft with save_state_dict.");

        public override void LoadStateDict(BinaryReader reader) => throw new NotSupportedException("Load the graft with load_state_dict.");

        public override void LoadStateDict(OptimizerState source) => throw new NotSupportedException("Load the graft with load_state_dict.");
    }

    private static void MoveChild(Optimizer child, Device device)
    {
        if (child is OptimizerHelper helper) helper.to(device);
    }

    /// <summary>Both children's options (M's groups, then D's) and states (M's tensors, then D's).</summary>
    public override StateDictionary state_dict()
    {
        ThrowIfDisposed();
        var m = ChildStateDict(_magnitude);
        var d = ChildStateDict(_direction);
        var sd = EmptyStateDictionary();
        sd.Options.AddRange(m.Options);
        sd.Options.AddRange(d.Options);
        sd.State.AddRange(m.State);
        sd.State.AddRange(d.State);
        int offset = m.State.Count;
        sd.StateIndexRef.AddRange(m.StateIndexRef);
        sd.StateIndexRef.AddRange(d.StateIndexRef.Select(r => r.Select(x => x + offset).ToList()));
        return sd;
    }

    private static StateDictionary EmptyStateDictionary() =>
        (StateDictionary)Activator.CreateInstance(typeof(StateDictionary), nonPublic: true)!;

    private static StateDictionary ChildStateDict(Optimizer child) =>
        child is OptimizerHelper h ? h.state_dict()
        : throw new NotSupportedException($"{child.GetType().Name} has no managed state dict; grafting can save only OptimizerHelper children.");

    /// <summary>Loads both children's options and states (validated by each child before it changes).</summary>
    public override void load_state_dict(StateDictionary state_dict)
    {
        ThrowIfDisposed();
        ArgumentNullException.ThrowIfNull(state_dict);
        var m = ChildStateDict(_magnitude);
        var d = ChildStateDict(_direction);
        if (state_dict.Options.Count != m.Options.Count + d.Options.Count || state_dict.State.Count != m.State.Count + d.State.Count)
            throw new ArgumentException("The state dict does not hold the two children's groups and states of this graft.", nameof(state_dict));
        var sm = EmptyStateDictionary();
        var sdd = EmptyStateDictionary();
        sm.Options.AddRange(state_dict.Options.Take(m.Options.Count));
        sdd.Options.AddRange(state_dict.Options.Skip(m.Options.Count));
        sm.State.AddRange(state_dict.State.Take(m.State.Count));
        sdd.State.AddRange(state_dict.State.Skip(m.State.Count));
        ((OptimizerHelper)_magnitude).load_state_dict(sm);
        ((OptimizerHelper)_direction).load_state_dict(sdd);
    }

    /// <summary>
    /// Writes the graft as a tagged checkpoint (see <see cref="IOptimizerCheckpoint"/>): its settings, both children's
    /// checkpoints (each under its own type name) and the graft's own momentum.
    /// </summary>
    public new void save_state_dict(BinaryWriter writer) => SaveCheckpoint(writer);

    /// <inheritdoc />
    public void SaveCheckpoint(BinaryWriter writer)
    {
        ThrowIfDisposed();
        ArgumentNullException.ThrowIfNull(writer);
        Checkpoint.WriteHeader(writer, nameof(GraftOptimizer));
        writer.Write((int)Options.Granularity);
        writer.Write(Options.BlockSize);
        writer.Write(Options.Epsilon);
        SaveChild(writer, _magnitude);
        SaveChild(writer, _direction);
        writer.Write((int)Options.Point);
        writer.Write(_momentum.Length);
        foreach (var t in _momentum) TensorIO.WriteOptional(writer, t);
    }

    /// <summary>
    /// Saves atomically to <paramref name="location"/> (temporary file, then rename), and deletes the temporary files
    /// of <paramref name="location"/> left by writers that were killed and no longer run.
    /// </summary>
    public new void save_state_dict(string location)
    {
        ThrowIfDisposed();
        AtomicFile.Write(location, save_state_dict);
    }

    /// <summary>
    /// Loads what <see cref="save_state_dict(BinaryWriter)"/> wrote. With rule-based children everything is read and
    /// validated before anything changes; built-in children are loaded by their own (per-item validated) code.
    /// </summary>
    public new void load_state_dict(BinaryReader reader) => StageCheckpoint(reader)();

    /// <inheritdoc />
    public Action StageCheckpoint(BinaryReader reader)
    {
        ThrowIfDisposed();
        ArgumentNullException.ThrowIfNull(reader);
        string? generic = Checkpoint.ReadHeader(reader, nameof(GraftOptimizer));
        if (generic == nameof(GraftOptimizer))
            throw new InvalidDataException(
                "The file holds TorchSharp's generic optimizer format for a GraftOptimizer (what OptimizerHelper.save_state_dict writes "
                + "when called through a base-class reference): the children's options and states, without the graft's own settings "
                + "and momentum. Load it through an OptimizerHelper reference, or save through the GraftOptimizer reference.");
        if (generic is not null)
            throw new InvalidDataException($"The state was saved by a '{generic}' optimizer; it cannot be loaded into a GraftOptimizer.");
        try {
            var granularity = (GraftGranularity)reader.ReadInt32();
            long block = reader.ReadInt64();
            double eps = reader.ReadDouble();
            if (granularity != Options.Granularity || (granularity == GraftGranularity.PerBlock && block != Options.BlockSize) || eps != Options.Epsilon)
                throw new InvalidDataException($"The state was saved by a graft with granularity {granularity}, block {block}, ε {eps}; this one has {Options.Granularity}, {Options.BlockSize}, {Options.Epsilon}.");
            var mBytes = ReadChild(reader, _magnitude);
            var dBytes = ReadChild(reader, _direction);
            var point = (GraftPoint)reader.ReadInt32();
            if (point != Options.Point)
                throw new InvalidDataException($"The state was saved by a graft with point {point}; this one has {Options.Point}.");
            int count = reader.ReadInt32();
            if (count != _params.Length)
                throw new InvalidDataException($"The saved graft has {count} momentum slots but this graft has {_params.Length} parameters.");
            var momentum = new Tensor?[count];
            try {
                for (int i = 0; i < count; i++)
                    momentum[i] = TensorIO.ReadOptional(reader, _params[i].shape, _params[i].dtype, _params[i].device, $"graft momentum of parameter {i}");
            } catch {
                foreach (var t in momentum) t?.Dispose();
                throw;
            }
            Action commitM, commitD;
            try {
                commitM = StageChild(_magnitude, mBytes);
                commitD = StageChild(_direction, dBytes);
            } catch {
                foreach (var t in momentum) t?.Dispose();
                throw;
            }
            return () => {
                // Rule-based children were fully validated by staging; built-ins validate while they load, so keep a copy
                // of both children to roll back to if the second one fails after the first has changed.
                byte[]? backupM = null, backupD = null;
                if (_magnitude is not IOptimizerCheckpoint || _direction is not IOptimizerCheckpoint) {
                    backupM = ChildBytes(_magnitude);
                    backupD = ChildBytes(_direction);
                }
                try {
                    commitM();
                    commitD();
                } catch (Exception e) when (backupM is not null && e is not OutOfMemoryException) {
                    StageChild(_magnitude, backupM)();
                    StageChild(_direction, backupD!)();
                    foreach (var t in momentum) t?.Dispose();
                    throw new InvalidDataException($"A child's saved state is invalid ({e.Message}); both children were restored.", e);
                }
                for (int i = 0; i < count; i++) {
                    _momentum[i]?.Dispose();
                    _momentum[i] = momentum[i];
                }
            };
        } catch (EndOfStreamException e) {
            throw new InvalidDataException("The graft state ends early: the file is truncated.", e);
        }
    }

    /// <summary>Loads a file written by <see cref="save_state_dict(string)"/>.</summary>
    public new void load_state_dict(string location)
    {
        ThrowIfDisposed();
        using var stream = File.OpenRead(location);
        using var reader = new BinaryReader(stream);
        var commit = StageCheckpoint(reader);
        if (stream.Position != stream.Length)
            throw new InvalidDataException($"{location} has {stream.Length - stream.Position} bytes after the graft state: the file is corrupted.");
        commit();
    }

    private static void SaveChild(BinaryWriter writer, Optimizer child)
    {
        var bytes = ChildBytes(child);
        writer.Write(child.GetType().Name);
        writer.Write((long)bytes.Length);
        writer.Write(bytes);
    }

    /// <summary>A child's own checkpoint (AdaGraft's optimizers), or TorchSharp's format for built-ins.</summary>
    private static byte[] ChildBytes(Optimizer child)
    {
        using var ms = new MemoryStream();
        using (var w = new BinaryWriter(ms, System.Text.Encoding.UTF8, leaveOpen: true)) {
            if (child is IOptimizerCheckpoint own) own.SaveCheckpoint(w);
            else if (child is OptimizerHelper helper) helper.save_state_dict(w);
            else throw new NotSupportedException($"{child.GetType().Name} has no managed state dict; grafting can save only OptimizerHelper children.");
        }
        return ms.ToArray();
    }

    private static byte[] ReadChild(BinaryReader reader, Optimizer child)
    {
        string type = reader.ReadString();
        if (type != child.GetType().Name)
            throw new InvalidDataException($"The saved graft has a '{type}' child where this graft has a '{child.GetType().Name}'.");
        long length = reader.ReadInt64();
        if (length < 0 || length > int.MaxValue)
            throw new InvalidDataException("The saved graft is corrupted (child length).");
        var bytes = reader.ReadBytes((int)length);
        if (bytes.Length != length) throw new InvalidDataException("The graft state ends early: the file is truncated.");
        return bytes;
    }

    private static Action StageChild(Optimizer child, byte[] bytes)
    {
        var stream = new MemoryStream(bytes);
        var reader = new BinaryReader(stream);
        string what = $"The saved {child.GetType().Name} section";
        if (child is IOptimizerCheckpoint staged) {
            var commit = staged.StageCheckpoint(reader);
            if (stream.Position != stream.Length)
                throw new InvalidDataException($"{what} has {stream.Length - stream.Position} unread bytes: the file is corrupted.");
            return commit;
        }
        return () => {
            ((OptimizerHelper)child).load_state_dict(reader);
            if (stream.Position != stream.Length)
                throw new InvalidDataException($"{what} has {stream.Length - stream.Position} unread bytes: the file is corrupted.");
        };
    }

    private static void ThrowIfChildDisposed(Optimizer child, string name)
    {
        if (child is IDisposableState { IsDisposed: true })
            throw new ObjectDisposedException(name, $"The {name} optimizer was disposed; build the graft over live optimizers.");
    }

    private void ThrowIfDisposed()
    {
        if (_disposed) throw new ObjectDisposedException(nameof(GraftOptimizer), "This GraftOptimizer was disposed; create a new one.");
    }

    /// <summary>Frees the scratch buffers and the last norms; disposes the children when <see cref="GraftOptions.OwnsChildren"/>.</summary>
    protected override void Dispose(bool disposing)
    {
        if (!_disposed && disposing) {
            foreach (var t in _saved) t?.Dispose();
            foreach (var t in _fusedScratch.Values) t.Dispose();
            _fusedScratch.Clear();
            foreach (var t in _work) t?.Dispose();
            foreach (var t in _momentum) t?.Dispose();
            foreach (var m in _marks) m?.Dispose();
            if (_momentumBackup is not null) foreach (var t in _momentumBackup) t?.Dispose();
            _skipped?.Dispose();
            _last?.Dispose();
            _last = null;
            if (Options.OwnsChildren) {
                _magnitude.Dispose();
                _direction.Dispose();
            }
        }
        _disposed = true;
        base.Dispose(disposing);
    }
}

/// <summary>An optimizer that knows whether it was disposed.</summary>
internal interface IDisposableState
{
    bool IsDisposed { get; }
}
