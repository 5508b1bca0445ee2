namespace AdaGraft.Rules;

/// <summary>
/// Per-tensor state of an update rule: a step counter, named persistent slots (saved in the state dict) and
/// scratch buffers (never saved). All tensors are detached from dispose scopes and freed in <see cref="Dispose()"/>.
/// Persistence, device moves and validation are written once here; a rule declares its slot names only.
/// </summary>
public abstract class RuleState : OptimizerState, IDisposable
{
    private readonly string[] _slotNames;
    private Tensor?[] _slots;
    private readonly Tensor?[] _scratch;
    private Tensor?[]? _backup;
    private Tensor? _paramBackup;
    private bool _disposed;
    private double[] _host;

    /// <summary>Creates the state of one parameter.</summary>
    protected RuleState(Parameter parameter, string[] slotNames, int scratchCount) : this(parameter, slotNames, scratchCount, 0)
    {
    }

    /// <summary>
    /// Creates the state of one parameter with <paramref name="hostValueCount"/> host-side numbers besides the slots
    /// (e.g. NAdam's running product of momentum coefficients), saved after the step count.
    /// </summary>
    protected RuleState(Parameter parameter, string[] slotNames, int scratchCount, int hostValueCount) : base(parameter)
    {
        _slotNames = slotNames;
        _slots = new Tensor?[slotNames.Length];
        _cache = new SlotCache(slotNames.Length);
        _scratch = new Tensor?[scratchCount];
        _host = new double[hostValueCount];
    }

    /// <summary>
    /// The host-side numbers of this state (saved and loaded with it; none unless the rule declared some). A rule
    /// reads and writes them in its step, on the host: they never cause a device synchronisation.
    /// </summary>
    protected internal double[] HostValues => _host;

    /// <summary>The parameter this state belongs to.</summary>
    public Parameter Parameter => _parameter;

    /// <summary>
    /// Device-side count of applied steps (0-d float64), present only while the optimizer skips non-finite steps: a
    /// skipped step advances <see cref="Step"/> (a host count of attempts) but not this, and rules that depend on
    /// the step count (bias correction) read this one so that a skipped step leaves no trace.
    /// </summary>
    public Tensor? AppliedSteps { get; private set; }

    /// <summary>Turns the device step count on (starting from <see cref="Step"/>) or off.</summary>
    internal void UseAppliedSteps(bool on)
    {
        if (on && AppliedSteps is null) {
            AppliedSteps = torch.tensor((double)Step, ScalarType.Float64, _parameter.device).DetachFromDisposeScope();
        } else if (!on && AppliedSteps is not null) {
            Step = (long)AppliedSteps.item<double>();
            AppliedSteps.Dispose();
            AppliedSteps = null;
        }
    }

    /// <summary>Copies every slot and the parameter into backup buffers (allocated once).</summary>
    internal void Backup()
    {
        _backup ??= new Tensor?[_slots.Length];
        for (int i = 0; i < _slots.Length; i++) {
            if (_slots[i] is not Tensor s) continue;
            var b = _backup[i];
            if (b is null || !TensorLayout.SameLayout(b, s)) {
                b?.Dispose();
                b = torch.empty_like(s).DetachFromDisposeScope();
                _backup[i] = b;
            }
            b.copy_(s);
        }
        if (_paramBackup is null || !TensorLayout.SameLayout(_paramBackup, _parameter)) {
            _paramBackup?.Dispose();
            _paramBackup = torch.empty_like(_parameter).DetachFromDisposeScope();
        }
        _paramBackup.copy_(_parameter);
    }

    /// <summary>
    /// Keeps the step's results where <paramref name="ok"/> (0-d bool) is true and restores the backups elsewhere,
    /// on the device (NaN-safe: a selection, not arithmetic). Slots created during the step are reset to zero.
    /// </summary>
    internal void KeepIf(Tensor ok)
    {
        for (int i = 0; i < _slots.Length; i++) {
            if (_slots[i] is not Tensor s) continue;
            var b = _backup?[i];
            if (b is null) {
                using var zero = torch.zeros_like(s);
                s.copy_(torch.where(ok, s, zero));
            } else {
                s.copy_(torch.where(ok, s, b));
            }
        }
        using (torch.no_grad()) _parameter.copy_(torch.where(ok, _parameter, _paramBackup!));
        AppliedSteps?.add_(ok.to_type(ScalarType.Float64));
    }

    /// <summary>Number of steps taken on this tensor (steps where it had a gradient).</summary>
    public long Step { get; set; }

    /// <summary>Names of the persistent slots, in saved order.</summary>
    public string[] SlotNames => _slotNames;

    /// <summary>The persistent slot <paramref name="index"/>, or null when not allocated.</summary>
    /// <remarks>
    /// A slot handed out here may end up in a user's autograd graph, so from then on the fused kernels advance its
    /// version counter after writing it (as an eager in-place operation would); slots never handed out cannot be in
    /// any graph, and skip that (libtorch's bump_version, 20–40 ns; a dispatched operation, about 3 µs, where it is not found).
    /// </remarks>
    public Tensor? GetSlot(int index)
    {
        _exposed = true;
        return _slots[index];
    }

    /// <summary>The slot <paramref name="index"/> for the library's own use (not handed to the caller).</summary>
    internal Tensor? SlotAt(int index) => _slots[index];

    /// <summary>How many slots the state has.</summary>
    internal int SlotCount => _slots.Length;

    /// <summary>True when every slot is shaped like the parameter (see <see cref="SlotsShapedLikeParameter"/>).</summary>
    internal bool SlotsLikeParameter => SlotsShapedLikeParameter;

    /// <summary>
    /// Moves allocated slot <paramref name="index"/> into <paramref name="place"/> (a view, laid out by the optimizer,
    /// of a buffer that holds the same slot of several small tensors end to end): copies the values and frees the
    /// tensor that held them. The slot then behaves as any other: it can be replaced, loaded, moved or handed out.
    /// </summary>
    internal void PlaceSlot(int index, Tensor place)
    {
        var old = _slots[index] ?? throw new InvalidOperationException($"Slot {index} is not allocated.");
        place.copy_(old);
        old.Dispose();
        _slots[index] = place;
        _cache.Invalidate();
    }

    private bool _exposed;

    // Facts about the slots (fit, fused eligibility, addresses), used only while no slot was handed out.
    private readonly SlotCache _cache;

    /// <summary>Raised by any use after <see cref="Dispose()"/>.</summary>
    protected void ThrowIfDisposed()
    {
        if (_disposed) throw new ObjectDisposedException(GetType().Name, "This optimizer state was disposed; create a new optimizer.");
    }

    /// <summary>
    /// The slot <paramref name="index"/>, allocated on first use with the shape <see cref="ExpectedSlotShape"/> gives
    /// (the parameter's unless overridden, e.g. Adafactor's factored rows and columns), the parameter's dtype and
    /// device, filled with <paramref name="fill"/>.
    /// </summary>
    protected Tensor EnsureSlot(int index, double fill = 0)
    {
        var t = _slots[index];
        if (t is null) {
            var shape = ExpectedSlotShape(index);
            t = (shape.SequenceEqual(_parameter.shape)
                ? torch.full_like(_parameter, fill)
                : torch.full(shape, fill, _parameter.dtype, _parameter.device)).DetachFromDisposeScope();
            _slots[index] = t;
            _cache.Invalidate();
        }
        return t;
    }

    /// <summary>
    /// The data address of slot <paramref name="index"/> (allocated as <see cref="EnsureSlot"/> does) for a fused
    /// kernel, read again only after a slot was replaced or handed to the caller.
    /// </summary>
    internal IntPtr SlotAddress(int index, double fill = 0)
    {
        var slot = EnsureSlot(index, fill);
        return _exposed ? FusedCpu.Pointer(slot) : _cache.Address(index, slot);
    }

    /// <summary>
    /// True when every allocated slot is a contiguous CPU tensor of <paramref name="dtype"/> (what the fused kernels
    /// need), asked again only after a slot was replaced or handed to the caller.
    /// </summary>
    internal bool SlotsCanFuse(ScalarType dtype)
    {
        if (!_exposed && _cache.Fusable(dtype) is bool known) return known;
        bool ok = true;
        for (int i = 0; i < _slots.Length && ok; i++) {
            if (_slots[i] is Tensor slot && !FusedCpu.Eligible(slot, dtype)) ok = false;
        }
        _cache.SetFusable(dtype, ok);
        return ok;
    }

    /// <summary>
    /// Frees every slot and resets the step count, then allocates every slot (zero-filled). A rule whose slots depend
    /// on its options (momentum off, an initial accumulator) overrides this.
    /// </summary>
    public override void Initialize(OptimizerOptions options)
    {
        Restart();
        for (int i = 0; i < _slots.Length; i++) EnsureSlot(i);
    }

    /// <summary>
    /// The start of every <see cref="Initialize"/>: raises when disposed, then frees every slot and resets the step count.
    /// </summary>
    private protected void Restart()
    {
        ThrowIfDisposed();
        ClearSlots();
    }

    /// <summary><see cref="Restart()"/>, then <paramref name="options"/> as the rule's options type (whose values pick the slots to allocate).</summary>
    private protected TOptions Restart<TOptions>(OptimizerOptions options) where TOptions : OptimizerOptions
    {
        Restart();
        return (TOptions)options;
    }

    /// <summary>Slot <paramref name="index"/> for the rule's step, allocated on first use (filled with <paramref name="fill"/>).</summary>
    protected internal Tensor Slot(int index, double fill = 0) => EnsureSlot(index, fill);

    /// <summary>The shape without dimension <paramref name="dim"/> (negative counts from the end).</summary>
    protected static long[] ShapeWithout(long[] shape, int dim)
    {
        int drop = dim < 0 ? shape.Length + dim : dim;
        return shape.Where((_, i) => i != drop).ToArray();
    }

    /// <summary>
    /// A scratch buffer shaped like the parameter, allocated once (again when the parameter's shape, dtype or device
    /// changed); contents are arbitrary.
    /// </summary>
    protected internal Tensor Scratch(int index)
    {
        var t = _scratch[index];
        if (t is null || !TensorLayout.SameLayout(t, _parameter)) {
            t?.Dispose();
            t = torch.empty_like(_parameter).DetachFromDisposeScope();
            _scratch[index] = t;
        }
        return t;
    }


    /// <summary>
    /// Throws <see cref="InvalidOperationException"/> when a persistent slot no longer fits the parameter: the
    /// parameter was resized, given new storage of another size (<c>set_</c>) or another dtype or device since its
    /// state was built. Called before every step, on the eager and the fused path alike, before anything changes.
    /// </summary>
    /// <param name="index">The parameter's index in the optimizer's list (for the message).</param>
    internal void CheckFits(int index)
    {
        ThrowIfDisposed();
        CheckStructure(index);
        // The slots are this state's own: while none was replaced or handed out, they fit as long as the parameter's
        // layout is the one they were last found to fit.
        if (!_exposed && _cache.StillFits(_parameter)) return;
        for (int i = 0; i < _slots.Length; i++) {
            if (_slots[i] is not Tensor s) continue;
            if (SlotFits(i, s)) continue;
            var want = ExpectedSlotShape(i);
            throw new InvalidOperationException(
                $"The optimizer state '{_slotNames[i]}' of the {TensorLayout.Describe(_parameter, index)} is {s.dtype} "
                + $"{TensorLayout.Shape(s.shape)} on {s.device}, but the parameter now needs {_parameter.dtype} "
                + $"{TensorLayout.Shape(want)} on {_parameter.device}: the parameter was resized, replaced (set_) or "
                + "converted after the optimizer was built. Build a new optimizer over the changed parameters (or load a matching state).");
        }
        _cache.Fitted(_parameter);
    }

    /// <summary>
    /// Throws <see cref="InvalidOperationException"/> when the state's structure (e.g. which dimensions a matrix
    /// preconditioner covers) no longer matches its group's options; called first by <see cref="CheckFits"/>, before
    /// anything changes. None by default.
    /// </summary>
    /// <param name="index">The parameter's index in the optimizer's list (for the message).</param>
    protected virtual void CheckStructure(int index)
    {
    }

    /// <summary>True when slot <paramref name="i"/> has the parameter's dtype and device and the shape <see cref="ExpectedSlotShape"/> gives.</summary>
    private bool SlotFits(int i, Tensor s) => SlotsShapedLikeParameter
        ? TensorLayout.SameLayout(s, _parameter)
        : s.dtype == _parameter.dtype && s.device_type == _parameter.device_type && s.device_index == _parameter.device_index
            && s.shape.SequenceEqual(ExpectedSlotShape(i));

    /// <summary>True when every slot is shaped like the parameter (false for factored or scalar slots).</summary>
    protected virtual bool SlotsShapedLikeParameter => true;

    /// <summary>
    /// Advances the autograd version counter of every allocated slot that was handed out (<see cref="GetSlot"/>), as one
    /// in-place operation on it would (after a fused kernel wrote them through their data pointers).
    /// </summary>
    internal void MarkSlotsWritten()
    {
        if (!_exposed) return;
        _slotMarks ??= new FusedCpu.WriteMark?[_slots.Length];
        for (int i = 0; i < _slots.Length; i++) {
            // A slot is this state's own tensor: its object identity tells whether it was replaced.
            if (_slots[i] is Tensor s) (_slotMarks[i] ??= new()).Mark(s, IntPtr.Zero);
        }
    }

    /// <summary>Advances the parameter's version counter after a kernel wrote it at <paramref name="address"/>.</summary>
    internal void MarkParameterWritten(IntPtr address) => (_parameterMark ??= new()).Mark(_parameter, address);

    private FusedCpu.WriteMark?[]? _slotMarks;
    private FusedCpu.WriteMark? _parameterMark;

    /// <summary>Frees every slot and resets the step counter.</summary>
    protected void ClearSlots()
    {
        for (int i = 0; i < _slots.Length; i++) {
            _slots[i]?.Dispose();
            _slots[i] = null;
        }
        _cache.Invalidate();
        Step = 0;
    }

    /// <summary>Writes the step counter and every slot (presence flag, dtype, shape, raw data).</summary>
    public override void SaveStateDict(BinaryWriter writer)
    {
        ThrowIfDisposed();
        writer.Write((int)_parameter.dtype);
        writer.Write(_parameter.shape.Length);
        foreach (var d in _parameter.shape) writer.Write(d);
        writer.Write(AppliedSteps is null ? Step : (long)AppliedSteps.item<double>());
        foreach (var h in _host) writer.Write(h);
        writer.Write(_slots.Length);
        for (int i = 0; i < _slots.Length; i++) {
            writer.Write(_slotNames[i]);
            TensorIO.WriteOptional(writer, _slots[i]);
        }
    }

    /// <summary>Reads what <see cref="SaveStateDict"/> wrote, validating everything before changing anything.</summary>
    public override void LoadStateDict(BinaryReader reader)
    {
        var (step, slots, host) = Read(reader);
        if (Stager is null) Commit(step, slots, host);
        else Stager.Stage(this, step, slots, host);
    }

    /// <summary>The optimizer that applies a load read through TorchSharp's base class only once all of it was read.</summary>
    internal ILoadStager? Stager { get; set; }

    /// <summary>Reads a saved state into new tensors (on this parameter's device) without changing this state.</summary>
    internal (long step, Tensor?[] slots, double[] host) Read(BinaryReader reader)
    {
        ThrowIfDisposed();
        var dtype = (ScalarType)reader.ReadInt32();
        int rank = reader.ReadInt32();
        if (rank < 0 || rank > 64) throw new InvalidDataException($"The saved state claims a parameter of rank {rank}: the file is corrupted.");
        var shape = new long[rank];
        for (int i = 0; i < rank; i++) shape[i] = reader.ReadInt64();
        if (dtype != _parameter.dtype || !shape.SequenceEqual(_parameter.shape))
            throw new InvalidDataException($"The saved state belongs to a {dtype} parameter of shape [{string.Join(", ", shape)}] but this parameter is {_parameter.dtype} of shape [{string.Join(", ", _parameter.shape)}]: load into an optimizer over the same model.");
        long step = reader.ReadInt64();
        if (step < 0) throw new InvalidDataException($"The saved step count {step} is negative: the file is corrupted.");
        var host = new double[_host.Length];
        for (int i = 0; i < host.Length; i++) {
            host[i] = reader.ReadDouble();
            if (!double.IsFinite(host[i])) throw new InvalidDataException($"The saved state's host value {i} is {host[i]}: the file is corrupted.");
        }
        int count = reader.ReadInt32();
        if (count != _slotNames.Length)
            throw new InvalidDataException($"The saved state has {count} slots but {GetType().Name} has {_slotNames.Length}: the file was written by another optimizer type.");
        var slots = new Tensor?[count];
        try {
            for (int i = 0; i < count; i++) {
                string name = reader.ReadString();
                if (name != _slotNames[i])
                    throw new InvalidDataException($"The saved state has slot '{name}' where {GetType().Name} expects '{_slotNames[i]}': the file was written by another optimizer type.");
                slots[i] = TensorIO.ReadOptional(reader, ExpectedSlotShape(i), _parameter.dtype, _parameter.device, $"state slot '{name}'");
            }
            CheckLoadedSlots(step, slots);
        } catch {
            foreach (var t in slots) t?.Dispose();
            throw;
        }
        return (step, slots, host);
    }

    /// <summary>
    /// Throws <see cref="InvalidDataException"/> when slots read from a file (each already of its expected shape) do not
    /// form a state this one can continue from (e.g. a matrix preconditioner's factors present for other dimensions).
    /// Called before anything changes; none by default.
    /// </summary>
    /// <param name="steps">The saved step count.</param>
    /// <param name="slots">The saved slots (null where absent).</param>
    protected virtual void CheckLoadedSlots(long steps, Tensor?[] slots)
    {
    }

    /// <summary>Copies another state of the same type (validated first).</summary>
    public override void LoadStateDict(OptimizerState source)
    {
        ThrowIfDisposed();
        if (source is not RuleState other || other.GetType() != GetType())
            throw new ArgumentException($"A state of type {source?.GetType().Name ?? "null"} cannot be loaded into {GetType().Name}.", nameof(source));
        for (int i = 0; i < _slots.Length; i++) {
            var s = other._slots[i];
            if (s is not null && !s.shape.SequenceEqual(ExpectedSlotShape(i)))
                throw new ArgumentException($"State slot '{_slotNames[i]}' has shape [{string.Join(", ", s.shape)}] but the parameter needs [{string.Join(", ", ExpectedSlotShape(i))}].", nameof(source));
        }
        var copies = other._slots.Select(s => s?.to(_parameter.dtype, _parameter.device, copy: true).DetachFromDisposeScope()).ToArray();
        Commit(other.Step, copies, (double[])other._host.Clone());
    }

    /// <summary>Replaces the slots (taking ownership of <paramref name="slots"/>).</summary>
    internal void Commit(long step, Tensor?[] slots, double[] host)
    {
        host.CopyTo(_host, 0);
        AppliedSteps?.fill_((double)step);
        for (int i = 0; i < _slots.Length; i++) {
            if (!ReferenceEquals(_slots[i], slots[i])) _slots[i]?.Dispose();
        }
        _slots = slots;
        _cache.Invalidate();
        Step = step;
    }

    /// <summary>The shape slot <paramref name="index"/> must have (the parameter's, unless overridden).</summary>
    protected virtual long[] ExpectedSlotShape(int index) => _parameter.shape;

    /// <summary>Moves every slot and scratch buffer to <paramref name="device"/>.</summary>
    public override void to(Device device)
    {
        ThrowIfDisposed();
        for (int i = 0; i < _slots.Length; i++) _slots[i] = Move(_slots[i], device);
        _cache.Invalidate();
        for (int i = 0; i < _scratch.Length; i++) _scratch[i] = Move(_scratch[i], device);
        AppliedSteps = Move(AppliedSteps, device);
    }

    private static Tensor? Move(Tensor? t, Device device)
    {
        if (t is null || t.device == device) return t;
        var moved = t.to(device).DetachFromDisposeScope();
        t.Dispose();
        return moved;
    }

    /// <summary>True when every slot equals the other state's (to allclose) and the step counters match.</summary>
    public override bool ApproximatelyEquals(OptimizerState other)
    {
        if (other is not RuleState o || o.GetType() != GetType() || o.Step != Step || !o._host.AsSpan().SequenceEqual(_host)) return false;
        for (int i = 0; i < _slots.Length; i++) {
            var a = _slots[i];
            var b = o._slots[i];
            if (a is null != b is null) return false;
            if (a is not null && !a.allclose(b!)) return false;
        }
        return true;
    }

    /// <summary>Frees every tensor of this state.</summary>
    public void Dispose()
    {
        Dispose(true);
        GC.SuppressFinalize(this);
    }

    /// <summary>Frees every tensor of this state.</summary>
    protected virtual void Dispose(bool disposing)
    {
        if (_disposed || !disposing) return;
        foreach (var t in _slots) t?.Dispose();
        _cache.Invalidate();
        foreach (var t in _scratch) t?.Dispose();
        if (_backup is not null) foreach (var t in _backup) t?.Dispose();
        _paramBackup?.Dispose();
        AppliedSteps?.Dispose();
        if (_slotMarks is not null) foreach (var m in _slotMarks) m?.Dispose();
        _parameterMark?.Dispose();
        _disposed = true;
    }
}
