namespace AdaGraft.Grafting;

/// <summary>
/// The work items and norm segments of one fused CPU graft step over the tensors that have a gradient, and the host
/// arithmetic that turns the items' sums of squares into per-segment and global norms and ratios. Shared by the fused
/// closed-form and black-box steps, so both measure exactly alike.
/// </summary>
/// <remarks>
/// Sums are added into their segments in item order, whatever order the items ran in, so the norms do not depend on
/// the number of threads.
/// </remarks>
internal sealed class FusedLayout
{
    private readonly int[] _firstItem, _firstSegment, _segments;
    private readonly Func<double, double, double> _ratioOf;
    private double _gm2, _gd2;

    /// <param name="active">Which tensors have a gradient (the others get no items and no segments).</param>
    /// <param name="numels">Each tensor's element count.</param>
    /// <param name="dtypes">Each active tensor's dtype (float32 or float64).</param>
    /// <param name="blockSize">Per-block grafting's block size, or 0 for one segment per tensor.</param>
    /// <param name="ratioOf">The graft's ratio of a magnitude norm to a direction norm.</param>
    /// <param name="groupElements">
    /// Per tensor or block, consecutive tensors of one dtype are swept together while their elements add up to at most
    /// this many (a larger tensor is a group of its own): many small tensors then share one parallel loop per pass
    /// instead of running one small loop each on one thread. 0: one tensor per group.
    /// </param>
    public FusedLayout(bool[] active, long[] numels, ScalarType[] dtypes, long blockSize, Func<double, double, double> ratioOf, long groupElements = 0)
    {
        int n = active.Length;
        Numels = numels;
        Dtypes = dtypes;
        _ratioOf = ratioOf;
        _firstItem = new int[n + 1];
        _firstSegment = new int[n];
        _segments = new int[n];
        int segmentCount = 0;
        for (int i = 0; i < n; i++) {
            _firstItem[i] = Items.Count;
            if (!active[i]) continue;
            long numel = numels[i];
            _firstSegment[i] = segmentCount;
            _segments[i] = blockSize > 0 && numel > blockSize ? (int)((numel + blockSize - 1) / blockSize) : 1;
            FusedCpu.Split(Items, i, numel, blockSize, segmentCount);
            segmentCount += _segments[i];
            Total += numel;
        }
        _firstItem[n] = Items.Count;
        // Groups of consecutive active tensors of one dtype, and each tensor's element offset inside its group.
        OffsetInGroup = new long[n];
        long groupSize = 0;
        int groupStart = -1;
        for (int i = 0; i < n; i++) {
            if (!active[i]) continue;
            bool fits = groupStart >= 0 && dtypes[i] == dtypes[groupStart] && groupSize + numels[i] <= groupElements;
            if (!fits) {
                if (groupStart >= 0) _groups.Add((groupStart, i));
                groupStart = i;
                groupSize = 0;
            }
            OffsetInGroup[i] = groupSize;
            groupSize += numels[i];
            LargestGroup[dtypes[i]] = Math.Max(LargestGroup.GetValueOrDefault(dtypes[i]), groupSize);
        }
        if (groupStart >= 0) _groups.Add((groupStart, n));
        // Per group: its elements, and its batches, the parallel loops' units. Inside a group, consecutive items of
        // small tensors are run by one thread one after the other until they make a chunk's worth, so each thread's
        // memory streams run on across tensors (packed state slots, the shared ΔD buffer) instead of jumping to
        // another thread's tensor every few kilobytes.
        GroupTotal = new long[n];
        _batchOf = new int[Items.Count + 1];
        foreach (var (from, to) in _groups) {
            long total = FusedCpu.Batch(Items, _firstItem[from], _firstItem[to], _batchStart, _batchOf);
            for (int i = from; i < to; i++) GroupTotal[i] = total;
        }
        _batchOf[Items.Count] = _batchStart.Count;
        _batchStart.Add(Items.Count);
        SumM = new double[Items.Count];
        SumD = new double[Items.Count];
        MagnitudeNorm = new double[segmentCount];
        DirectionNorm = new double[segmentCount];
        Ratio = new double[segmentCount];
    }

    public List<FusedCpu.WorkItem> Items { get; } = new();

    private readonly List<int> _batchStart = new();
    private readonly int[] _batchOf;

    /// <summary>
    /// Runs <paramref name="item"/> over items [from, to) (a range <see cref="Sweep"/> hands out) in parallel, a batch of
    /// consecutive items per task (see the constructor); <paramref name="elements"/>: how many elements they cover.
    /// </summary>
    public void Run(int from, int to, long elements, Action<int> item)
    {
        int first = _batchOf[from], last = _batchOf[to];
        FusedCpu.Run(last - first, elements, b => {
            for (int j = _batchStart[first + b]; j < _batchStart[first + b + 1]; j++) item(j);
        });
    }

    /// <summary>Per tensor: its first element's offset in its group (see the constructor's groupElements).</summary>
    public long[] OffsetInGroup { get; }

    /// <summary>Per tensor: the elements of all the active tensors in its group.</summary>
    public long[] GroupTotal { get; }

    /// <summary>Per dtype: the most elements one group of that dtype has (the size a per-group buffer needs).</summary>
    public Dictionary<ScalarType, long> LargestGroup { get; } = new();

    private readonly List<(int from, int to)> _groups = new();

    public long[] Numels { get; }

    public ScalarType[] Dtypes { get; }

    /// <summary>Elements over all active tensors.</summary>
    public long Total { get; }

    /// <summary>Per item: Σ ΔM² and Σ ΔD² over its elements (written by the kernels).</summary>
    public double[] SumM { get; }

    /// <inheritdoc cref="SumM"/>
    public double[] SumD { get; }

    /// <summary>Per segment, once measured.</summary>
    public double[] MagnitudeNorm { get; }

    /// <inheritdoc cref="MagnitudeNorm"/>
    public double[] DirectionNorm { get; }

    /// <summary>Per segment: the ratio its elements are scaled by.</summary>
    public double[] Ratio { get; }

    public double GlobalMagnitude { get; private set; }

    public double GlobalDirection { get; private set; }

    public double GlobalRatio { get; private set; }

    /// <summary>The items of tensor <paramref name="i"/>: [from, to).</summary>
    public (int from, int to) ItemsOf(int i) => (_firstItem[i], _firstItem[i + 1]);

    /// <summary>
    /// Sums tensor <paramref name="i"/>'s items into its segments, adds them to the global sums, and turns its
    /// segments' sums into norms and ratios.
    /// </summary>
    private void Measure(int i)
    {
        for (int j = _firstItem[i]; j < _firstItem[i + 1]; j++) {
            MagnitudeNorm[Items[j].Segment] += SumM[j];
            DirectionNorm[Items[j].Segment] += SumD[j];
        }
        for (int s = _firstSegment[i]; s < _firstSegment[i] + _segments[i]; s++) {
            _gm2 += MagnitudeNorm[s];
            _gd2 += DirectionNorm[s];
            MagnitudeNorm[s] = Math.Sqrt(MagnitudeNorm[s]);
            DirectionNorm[s] = Math.Sqrt(DirectionNorm[s]);
            Ratio[s] = _ratioOf(MagnitudeNorm[s], DirectionNorm[s]);
        }
    }

    /// <summary>
    /// The global norms and ratio, once every tensor is measured; with <paramref name="global"/> every segment takes
    /// the global ratio.
    /// </summary>
    private void Finish(bool global)
    {
        GlobalMagnitude = Math.Sqrt(_gm2);
        GlobalDirection = Math.Sqrt(_gd2);
        GlobalRatio = _ratioOf(GlobalMagnitude, GlobalDirection);
        if (global) Array.Fill(Ratio, GlobalRatio);
    }

    /// <summary>
    /// Runs a fused graft's two passes and measures in between. Per tensor or block (<paramref name="global"/> false)
    /// each group's first pass (a group: one tensor, or several small ones), its tensors' norms and its second pass run
    /// back to back, so the second pass finds the group still in cache; globally every first pass runs, then the norms, then every second pass. Each pass gets a range
    /// of items [from, to) and its element count.
    /// </summary>
    /// <param name="global">Every segment takes the global ratio.</param>
    /// <param name="first">The first pass over a range of items.</param>
    /// <param name="second">The second pass over a range of items.</param>
    /// <param name="reduce">
    /// Sharded state (<see cref="GraftOptions.ReduceSquaredNorms"/>): every first pass runs, the squared norms go
    /// through this all-reduce (as a CPU float64 tensor laid out as that option documents), then every second pass.
    /// </param>
    public void Sweep(bool global, Action<int, int, long> first, Action<int, int, long> second, Action<Tensor>? reduce = null)
    {
        if (reduce is not null) {
            first(0, Items.Count, Total);
            Reduce(global, reduce);
            second(0, Items.Count, Total);
            return;
        }
        if (!global) {
            foreach (var (from, to) in _groups) {
                long elements = 0;
                for (int i = from; i < to; i++) if (_segments[i] > 0) elements += Numels[i];
                first(_firstItem[from], _firstItem[to], elements);
                for (int i = from; i < to; i++) if (_segments[i] > 0) Measure(i);
                second(_firstItem[from], _firstItem[to], elements);
            }
            Finish(global: false);
            return;
        }
        first(0, Items.Count, Total);
        for (int i = 0; i < _segments.Length; i++) if (_segments[i] > 0) Measure(i);
        Finish(global: true);
        second(0, Items.Count, Total);
    }

    /// <summary>
    /// The segments' and global squared norms through the caller's all-reduce, then norms and ratios (one segment per
    /// tensor: the option allows no blocks). The tensor is made on the CPU, so reading it back synchronises nothing.
    /// </summary>
    private void Reduce(bool global, Action<Tensor> reduce)
    {
        int n = _segments.Length;
        for (int i = 0; i < n; i++) {
            if (_segments[i] == 0) continue;
            for (int j = _firstItem[i]; j < _firstItem[i + 1]; j++) {
                MagnitudeNorm[Items[j].Segment] += SumM[j];
                DirectionNorm[Items[j].Segment] += SumD[j];
            }
            _gm2 += MagnitudeNorm[_firstSegment[i]];
            _gd2 += DirectionNorm[_firstSegment[i]];
        }
        var values = new double[global ? 2 : 2 * n + 2];
        if (!global) {
            for (int i = 0; i < n; i++) {
                if (_segments[i] == 0) continue;
                values[i] = MagnitudeNorm[_firstSegment[i]];
                values[n + i] = DirectionNorm[_firstSegment[i]];
            }
        }
        values[^2] = _gm2;
        values[^1] = _gd2;
        using (var squares = torch.tensor(values, ScalarType.Float64)) {
            reduce(squares);
            if (squares.dim() != 1 || squares.shape[0] != values.Length || squares.dtype != ScalarType.Float64 || squares.device_type != DeviceType.CPU)
                throw new InvalidOperationException(
                    $"GraftOptions.ReduceSquaredNorms must sum its tensor across shards in place, keeping its shape [{values.Length}], dtype Float64 and device cpu; "
                    + $"it left shape [{string.Join(", ", squares.shape)}], dtype {squares.dtype} and device {squares.device}.");
            using var contiguous = squares.contiguous();
            contiguous.data<double>().ToArray().CopyTo(values, 0);
        }
        for (int i = 0; i < n; i++) {
            if (_segments[i] == 0) continue;
            int s = _firstSegment[i];
            if (!global) {
                MagnitudeNorm[s] = values[i];
                DirectionNorm[s] = values[n + i];
            }
            MagnitudeNorm[s] = Math.Sqrt(MagnitudeNorm[s]);
            DirectionNorm[s] = Math.Sqrt(DirectionNorm[s]);
            Ratio[s] = _ratioOf(MagnitudeNorm[s], DirectionNorm[s]);
        }
        _gm2 = values[^2];
        _gd2 = values[^1];
        Finish(global);
    }

    /// <summary>The step's norms, kept on the host (tensors are made only if read), in the eager path's dtypes.</summary>
    public HostStepNorms Build()
    {
        bool anyDouble = false;
        for (int i = 0; i < _segments.Length; i++) anyDouble |= _segments[i] > 0 && Dtypes[i] == ScalarType.Float64;
        return new HostStepNorms(MagnitudeNorm, DirectionNorm, Ratio, _firstSegment, _segments, Dtypes,
            GlobalMagnitude, GlobalDirection, GlobalRatio, anyDouble ? ScalarType.Float64 : ScalarType.Float32);
    }
}
