using System.Globalization;
using System.Text;
using AdaGraft.Grafting;

namespace AdaGraft.Diagnostics;

/// <summary>One recorded value: the norms of one tensor (or of all, <see cref="StepNormRecorder.GlobalName"/>) at one step.</summary>
/// <param name="Step">1-based optimizer step.</param>
/// <param name="Tensor">The tensor's name, or <see cref="StepNormRecorder.GlobalName"/>.</param>
/// <param name="MagnitudeNorm">‖ΔM‖.</param>
/// <param name="DirectionNorm">‖ΔD‖.</param>
/// <param name="Ratio">‖ΔM‖/‖ΔD‖ (0 where ‖ΔD‖ = 0).</param>
public sealed record StepNormRecord(long Step, string Tensor, double MagnitudeNorm, double DirectionNorm, double Ratio);

/// <summary>Options of a <see cref="StepNormRecorder"/>.</summary>
public sealed record RecorderOptions
{
    /// <summary>Copy the device buffer to the host every this many recorded steps (the only synchronisation). Default 100.</summary>
    public int FlushEvery { get; init; } = 100;

    /// <summary>Record every this many steps (default 1).</summary>
    public int Stride { get; init; } = 1;

    /// <summary>
    /// Most recorded steps kept on the host (default 100,000). When exceeded, every other kept step is dropped and the
    /// stride doubles, so a run of any length keeps between half and all of this many steps, evenly spaced.
    /// </summary>
    public int MaxRecordedSteps { get; init; } = 100_000;

    /// <summary>Throws <see cref="ArgumentOutOfRangeException"/> naming the first invalid option.</summary>
    public void Validate()
    {
        if (FlushEvery < 1) throw new ArgumentOutOfRangeException(nameof(FlushEvery), FlushEvery, "FlushEvery must be at least 1; e.g. 100.");
        if (Stride < 1) throw new ArgumentOutOfRangeException(nameof(Stride), Stride, "Stride must be at least 1.");
        if (MaxRecordedSteps < 2) throw new ArgumentOutOfRangeException(nameof(MaxRecordedSteps), MaxRecordedSteps, "MaxRecordedSteps must be at least 2.");
    }
}

/// <summary>
/// Records ‖ΔM‖, ‖ΔD‖ and their ratio for every tensor and globally at each step of a <see cref="GraftOptimizer"/>
/// (paper sections 3.4 and 4.2, figures 4 and 7). Values are copied on the device into a preallocated buffer and
/// brought to the host every <see cref="RecorderOptions.FlushEvery"/> recorded steps, so recording never
/// synchronises inside <c>step()</c> except on those flush steps. Memory stays bounded (stride doubling).
/// </summary>
public sealed class StepNormRecorder : IDisposable
{
    /// <summary>The tensor name of the global rows.</summary>
    public const string GlobalName = "__global__";

    private readonly GraftOptimizer _graft;
    private readonly RecorderOptions _options;
    private readonly string[] _names;
    private readonly List<long> _steps = new();
    private readonly List<double[]> _rows = new();
    private readonly List<double[]> _rates = new();
    private readonly long[] _pendingSteps;
    private readonly double[][] _pendingRates;
    private readonly int[] _directionGroupOf;
    private Tensor? _buffer;
    private int _pending;
    private long _step;
    private int _stride;
    private bool _disposed;

    /// <summary>Attaches to <paramref name="graft"/>; every later step is recorded.</summary>
    /// <param name="graft">The graft to record.</param>
    /// <param name="options">Flush interval, stride and memory bound.</param>
    /// <param name="tensorNames">A name per parameter (in the graft's order); default p0, p1, ….</param>
    public StepNormRecorder(GraftOptimizer graft, RecorderOptions? options = null, IReadOnlyList<string>? tensorNames = null)
    {
        ArgumentNullException.ThrowIfNull(graft);
        _options = options ?? new RecorderOptions();
        _options.Validate();
        int n = graft.parameters().Count();
        if (tensorNames is not null && tensorNames.Count != n)
            throw new ArgumentException($"{tensorNames.Count} names were given for {n} parameters.", nameof(tensorNames));
        _names = tensorNames?.ToArray() ?? Enumerable.Range(0, n).Select(i => $"p{i}").ToArray();
        _graft = graft;
        _stride = _options.Stride;
        _pendingSteps = new long[_options.FlushEvery];
        _pendingRates = new double[_options.FlushEvery][];
        _directionGroupOf = GroupIndices(graft);
        graft.Stepped += OnStepped;
    }

    /// <summary>Attaches to <paramref name="graft"/>, naming tensors after <paramref name="model"/>'s parameters.</summary>
    public StepNormRecorder(GraftOptimizer graft, nn.Module model, RecorderOptions? options = null)
        : this(graft, options, NamesFrom(graft, model))
    {
    }

    private static string[] NamesFrom(GraftOptimizer graft, nn.Module model)
    {
        ArgumentNullException.ThrowIfNull(graft);
        ArgumentNullException.ThrowIfNull(model);
        var byHandle = model.named_parameters().ToDictionary(np => np.parameter.Handle, np => np.name);
        return graft.parameters().Select((p, i) => byHandle.TryGetValue(p.Handle, out var name) ? name : $"p{i}").ToArray();
    }

    /// <summary>For each of the graft's parameters, the index of D's parameter group that holds it (−1: not found).</summary>
    private static int[] GroupIndices(GraftOptimizer graft)
    {
        var byHandle = new Dictionary<IntPtr, int>();
        int g = 0;
        foreach (var group in graft.Direction.ParamGroups) {
            if (group is TorchSharp.Modules.ParamGroup pg) {
                foreach (var p in pg.Parameters) byHandle.TryAdd(p.Handle, g);
            }
            g++;
        }
        return graft.parameters().Select(p => byHandle.TryGetValue(p.Handle, out int i) ? i : -1).ToArray();
    }

    /// <summary>Tensor names, in the graft's parameter order.</summary>
    public IReadOnlyList<string> TensorNames => _names;

    /// <summary>Recorded steps already copied to the host (grows only on flush steps; reading it does not flush).</summary>
    public int HostSteps => _steps.Count;

    /// <summary>The current stride (doubles when the memory bound is reached).</summary>
    public int Stride => _stride;

    private void OnStepped(GraftOptimizer graft)
    {
        if (_disposed) return;
        _step++;
        if (_step % _stride != 0) return;
        var norms = graft.LastNorms;
        if (norms is null) return;
        using var scope = torch.NewDisposeScope();
        var row = BuildRow(norms);
        if (_buffer is null || _buffer.device_type != row.device_type || _buffer.device_index != row.device_index) {
            FlushPending();
            _buffer?.Dispose();
            _buffer = torch.zeros(new long[] { _options.FlushEvery, row.shape[0] }, ScalarType.Float64, row.device).DetachFromDisposeScope();
        }
        _buffer[_pending].copy_(row);
        _pendingSteps[_pending] = _step;
        _pendingRates[_pending] = graft.Direction.ParamGroups.Select(pg => pg.LearningRate).ToArray();
        _pending++;
        if (_pending == _options.FlushEvery) FlushPending();
    }

    /// <summary>[m_0, d_0, r_0, …, m_{n−1}, d_{n−1}, r_{n−1}, m_global, d_global, r_global]; NaN for tensors without a gradient.</summary>
    private Tensor BuildRow(GraftStepNorms norms)
    {
        if (norms.Host is HostStepNorms host) return torch.tensor(HostRow(host), ScalarType.Float64);
        var device = norms.GlobalMagnitude.device;
        var parts = new List<Tensor>(3 * _names.Length + 3);
        Tensor? missing = null;
        for (int i = 0; i < _names.Length; i++) {
            if (norms.Magnitude[i] is not Tensor m || norms.Direction[i] is not Tensor d) {
                missing ??= torch.full(1, double.NaN, ScalarType.Float64, device);
                parts.Add(missing);
                parts.Add(missing);
                parts.Add(missing);
                continue;
            }
            // Per-block norms combine to the tensor's norm.
            var mt = m.to_type(ScalarType.Float64).norm().view(1);
            var dt = d.to_type(ScalarType.Float64).norm().view(1);
            parts.Add(mt);
            parts.Add(dt);
            parts.Add(dt.reciprocal().nan_to_num_(0, 0, 0).mul_(mt));
        }
        parts.Add(norms.GlobalMagnitude.to_type(ScalarType.Float64).view(1));
        parts.Add(norms.GlobalDirection.to_type(ScalarType.Float64).view(1));
        parts.Add(norms.GlobalRatio.to_type(ScalarType.Float64).view(1));
        return torch.cat(parts.ToArray(), 0);
    }

    /// <summary>
    /// The same row from norms a fused CPU step measured on the host, computed as the tensor path computes it (values
    /// rounded to the reported dtype first), without creating a tensor per value.
    /// </summary>
    private double[] HostRow(HostStepNorms h)
    {
        var row = new double[3 * _names.Length + 3];
        for (int i = 0; i < _names.Length; i++) {
            if (i >= h.Count.Length || h.Count[i] == 0) {
                row[3 * i] = row[3 * i + 1] = row[3 * i + 2] = double.NaN;
                continue;
            }
            double m2 = 0, d2 = 0;
            for (int s = h.First[i]; s < h.First[i] + h.Count[i]; s++) {
                double m = Round(h.Magnitude[s], h.Dtype[i]), d = Round(h.Direction[s], h.Dtype[i]);
                m2 += m * m;
                d2 += d * d;
            }
            (row[3 * i], row[3 * i + 1]) = (Math.Sqrt(m2), Math.Sqrt(d2));
            row[3 * i + 2] = HostStepNorms.RatioOf(row[3 * i], row[3 * i + 1]);
        }
        int g = 3 * _names.Length;
        row[g] = Round(h.GlobalMagnitude, h.GlobalDtype);
        row[g + 1] = Round(h.GlobalDirection, h.GlobalDtype);
        row[g + 2] = Round(h.GlobalRatio, h.GlobalDtype);
        return row;

        static double Round(double x, ScalarType dtype) => dtype == ScalarType.Float32 ? (float)x : x;
    }

    /// <summary>Copies pending device values to the host (one synchronisation).</summary>
    public void Flush()
    {
        ThrowIfDisposed();
        FlushPending();
    }

    private void FlushPending()
    {
        if (_pending == 0 || _buffer is null) return;
        using var host = _buffer.narrow(0, 0, _pending).cpu();
        var values = host.data<double>().ToArray();
        int width = (int)_buffer.shape[1];
        for (int r = 0; r < _pending; r++) {
            _steps.Add(_pendingSteps[r]);
            _rows.Add(values.AsSpan(r * width, width).ToArray());
            _rates.Add(_pendingRates[r]);
        }
        _pending = 0;
        while (_steps.Count > _options.MaxRecordedSteps) Thin();
    }

    /// <summary>Keeps every other recorded step (those on the doubled stride) and doubles the stride.</summary>
    private void Thin()
    {
        _stride *= 2;
        var keep = Enumerable.Range(0, _steps.Count).Where(i => _steps[i] % _stride == 0).ToArray();
        var steps = keep.Select(i => _steps[i]).ToList();
        var rows = keep.Select(i => _rows[i]).ToList();
        var rates = keep.Select(i => _rates[i]).ToList();
        _steps.Clear();
        _steps.AddRange(steps);
        _rows.Clear();
        _rows.AddRange(rows);
        _rates.Clear();
        _rates.AddRange(rates);
    }

    /// <summary>All records flushed so far, tidy: one per (step, tensor), globals last in each step.</summary>
    public IReadOnlyList<StepNormRecord> Records()
    {
        ThrowIfDisposed();
        FlushPending();
        var list = new List<StepNormRecord>(_steps.Count * (_names.Length + 1));
        for (int s = 0; s < _steps.Count; s++) {
            var row = _rows[s];
            for (int i = 0; i <= _names.Length; i++) {
                double m = row[3 * i], d = row[3 * i + 1], r = row[3 * i + 2];
                if (double.IsNaN(m)) continue;
                list.Add(new StepNormRecord(_steps[s], i < _names.Length ? _names[i] : GlobalName, m, d, r));
            }
        }
        return list;
    }

    /// <summary>The global ratio series: (steps, ratios).</summary>
    public (double[] steps, double[] ratios) GlobalRatios()
    {
        var g = Records().Where(r => r.Tensor == GlobalName).ToArray();
        return (g.Select(r => (double)r.Step).ToArray(), g.Select(r => r.Ratio).ToArray());
    }

    /// <summary>
    /// The paper's correction c(t) (sections 3.4 and 4.2): at each recorded step, the learning rate the graft gave D's
    /// direction (the ratio ‖ΔM‖/‖ΔD‖ times D's own learning rate inside the graft at that step) divided by the rate
    /// D would use on its own, <paramref name="directionRate"/>(t). Training D alone with its rate multiplied by c(t)
    /// takes the graft's steps. Steps where <paramref name="tensor"/> had no gradient are left out.
    /// </summary>
    /// <param name="directionRate">D's own scheduled learning rate at optimizer step t (1-based): e.g.
    /// <c>t =&gt; lr * Math.Pow(0.1, (t - 1) / 30)</c> for <c>StepLR(step_size: 30)</c>; with a TorchSharp
    /// <c>LambdaLR</c> it is <c>lr · λ(t − 1)</c>. Must be finite and positive at every recorded step.</param>
    /// <param name="tensor">A tensor name (<see cref="TensorNames"/>) or <see cref="GlobalName"/> (default).</param>
    /// <returns>The recorded steps and c(t) at each.</returns>
    /// <exception cref="ArgumentException">An unknown tensor, or <paramref name="directionRate"/> not finite and
    /// positive at some step.</exception>
    /// <exception cref="InvalidOperationException">The global series was asked for while D's parameter groups had
    /// different learning rates (no single factor relates the global ratio to one rate): use a tensor's series.</exception>
    public (double[] steps, double[] corrections) Corrections(Func<long, double> directionRate, string tensor = GlobalName)
    {
        ArgumentNullException.ThrowIfNull(directionRate);
        ArgumentNullException.ThrowIfNull(tensor);
        ThrowIfDisposed();
        int index = tensor == GlobalName ? _names.Length : Array.IndexOf(_names, tensor);
        if (index < 0)
            throw new ArgumentException($"No tensor is named '{tensor}'; use one of {string.Join(", ", _names)} or StepNormRecorder.GlobalName.", nameof(tensor));
        FlushPending();
        var steps = new List<double>(_steps.Count);
        var values = new List<double>(_steps.Count);
        for (int s = 0; s < _steps.Count; s++) {
            double ratio = _rows[s][3 * index + 2];
            if (double.IsNaN(_rows[s][3 * index])) continue;
            long step = _steps[s];
            double own = directionRate(step);
            if (!double.IsFinite(own) || own <= 0)
                throw new ArgumentException($"directionRate({step}) = {own}; D's own learning rate must be finite and positive at every recorded step.", nameof(directionRate));
            steps.Add(step);
            values.Add(ratio * GraftRate(_rates[s], index, step) / own);
        }
        return (steps.ToArray(), values.ToArray());
    }

    /// <summary>D's learning rate inside the graft for the series <paramref name="index"/> (a tensor, or the global one).</summary>
    private double GraftRate(double[] rates, int index, long step)
    {
        if (index < _names.Length && index < _directionGroupOf.Length && _directionGroupOf[index] >= 0 && _directionGroupOf[index] < rates.Length)
            return rates[_directionGroupOf[index]];
        double first = rates[0];
        if (rates.Any(r => r != first)) {
            throw new InvalidOperationException(index == _names.Length
                ? $"At step {step} D's parameter groups had different learning rates ({string.Join(", ", rates)}): the global ratio has no single correction. Ask for a tensor's series, or give D one rate inside the graft."
                : $"At step {step} D's parameter groups had different learning rates ({string.Join(", ", rates)}) and the group of '{_names[index]}' is not known.");
        }
        return first;
    }

    /// <summary>
    /// Schedule discovery in one call: fits <see cref="Corrections"/> (its finite points) to <paramref name="family"/>,
    /// or to the family with the highest R² when null. <c>.ToCorrection()</c> (in <c>AdaGraft.Schedules</c>) turns the
    /// fit into the correction a <c>CorrectedScheduler</c> multiplies onto D's schedule.
    /// </summary>
    /// <param name="directionRate">D's own scheduled learning rate at step t (1-based), as for <see cref="Corrections"/>.</param>
    /// <param name="family">The shape to fit; null: the best of those that apply (power law and exponential need c &gt; 0).</param>
    /// <param name="tensor">A tensor name or <see cref="GlobalName"/> (default).</param>
    public ScheduleFitResult FitCorrection(Func<long, double> directionRate, ScheduleFamily? family = null, string tensor = GlobalName)
    {
        var (steps, values) = Corrections(directionRate, tensor);
        var keep = Enumerable.Range(0, values.Length).Where(i => double.IsFinite(values[i])).ToArray();
        if (keep.Length < 3)
            throw new InvalidOperationException($"Only {keep.Length} recorded steps of '{tensor}' have a finite correction; fitting needs at least 3. Train longer or record more often (RecorderOptions.Stride).");
        var t = keep.Select(i => steps[i]).ToArray();
        var c = keep.Select(i => values[i]).ToArray();
        return family switch {
            null => ScheduleFitter.Best(t, c),
            ScheduleFamily.Linear => ScheduleFitter.Linear(t, c),
            ScheduleFamily.PowerLaw => ScheduleFitter.PowerLaw(t, c),
            ScheduleFamily.Exponential => ScheduleFitter.Exponential(t, c),
            _ => throw new ArgumentOutOfRangeException(nameof(family), family, "Use Linear, PowerLaw, Exponential, or null for the best."),
        };
    }

    /// <summary>Writes <c>step,tensor,m_norm,d_norm,ratio</c> CSV (invariant culture, round-trip precision).</summary>
    public void WriteCsv(string path) => StepNormCsv.Write(path, Records());

    /// <summary>Detaches from the graft and frees the device buffer.</summary>
    public void Dispose()
    {
        if (_disposed) return;
        _graft.Stepped -= OnStepped;
        _buffer?.Dispose();
        _disposed = true;
    }

    private void ThrowIfDisposed()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
    }
}

/// <summary>Reads and writes the recorder's tidy CSV: <c>step,tensor,m_norm,d_norm,ratio</c>.</summary>
public static class StepNormCsv
{
    /// <summary>The header line.</summary>
    public const string Header = "step,tensor,m_norm,d_norm,ratio";

    /// <summary>Writes <paramref name="records"/> to <paramref name="path"/>.</summary>
    public static void Write(string path, IEnumerable<StepNormRecord> records)
    {
        ArgumentNullException.ThrowIfNull(records);
        using var w = new StreamWriter(path, false, new UTF8Encoding(false));
        w.WriteLine(Header);
        foreach (var r in records) {
            w.Write(r.Step.ToString(CultureInfo.InvariantCulture));
            w.Write(',');
            w.Write(Quote(r.Tensor));
            w.Write(',');
            w.Write(r.MagnitudeNorm.ToString("R", CultureInfo.InvariantCulture));
            w.Write(',');
            w.Write(r.DirectionNorm.ToString("R", CultureInfo.InvariantCulture));
            w.Write(',');
            w.WriteLine(r.Ratio.ToString("R", CultureInfo.InvariantCulture));
        }
    }

    /// <summary>Reads a file written by <see cref="Write"/>; throws <see cref="InvalidDataException"/> naming the bad line.</summary>
    public static List<StepNormRecord> Read(string path)
    {
        var lines = File.ReadAllLines(path);
        if (lines.Length == 0 || lines[0].Trim() != Header)
            throw new InvalidDataException($"{path} does not start with the header '{Header}'.");
        var list = new List<StepNormRecord>(lines.Length - 1);
        for (int i = 1; i < lines.Length; i++) {
            if (lines[i].Length == 0) continue;
            var f = Split(lines[i]);
            if (f.Count != 5
                || !long.TryParse(f[0], NumberStyles.Integer, CultureInfo.InvariantCulture, out long step)
                || !double.TryParse(f[2], NumberStyles.Float, CultureInfo.InvariantCulture, out double m)
                || !double.TryParse(f[3], NumberStyles.Float, CultureInfo.InvariantCulture, out double d)
                || !double.TryParse(f[4], NumberStyles.Float, CultureInfo.InvariantCulture, out double r))
                throw new InvalidDataException($"{path}, line {i + 1}: expected step,tensor,m_norm,d_norm,ratio but found '{lines[i]}'.");
            list.Add(new StepNormRecord(step, f[1], m, d, r));
        }
        return list;
    }

    private static readonly System.Buffers.SearchValues<char> Special = System.Buffers.SearchValues.Create(",\"\n\r");

    private static string Quote(string s) =>
        s.AsSpan().IndexOfAny(Special) < 0 ? s : "\"" + s.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"";

    private static List<string> Split(string line)
    {
        var fields = new List<string>();
        var sb = new StringBuilder();
        bool quoted = false;
        for (int i = 0; i < line.Length; i++) {
            char c = line[i];
            if (quoted) {
                if (c == '"' && i + 1 < line.Length && line[i + 1] == '"') {
                    sb.Append('"');
                    i++;
                } else if (c == '"') {
                    quoted = false;
                } else {
                    sb.Append(c);
                }
            } else if (c == '"') {
                quoted = true;
            } else if (c == ',') {
                fields.Add(sb.ToString());
                sb.Clear();
            } else {
                sb.Append(c);
            }
        }
        fields.Add(sb.ToString());
        return fields;
    }
}
