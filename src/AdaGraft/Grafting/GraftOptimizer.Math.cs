namespace AdaGraft.Grafting;

/// <summary>The norm, ratio (0 where ‖ΔD‖ = 0), zero rule and combination math every eager path shares.</summary>
public sealed partial class GraftOptimizer
{
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
        if (Options.ReduceSquaredNorms is { } reduce) return CombineReduced(m, d, reduce);
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

    /// <summary>
    /// <see cref="Combine"/> for sharded state: the squared norms go through the caller's all-reduce
    /// (<see cref="GraftOptions.ReduceSquaredNorms"/>) before the square roots and ratios, all on the device. The hook
    /// is called even when no tensor of this shard has a gradient (its collective must run on every shard).
    /// </summary>
    private Measured CombineReduced(Tensor?[] m, Tensor?[] d, Action<Tensor> reduce)
    {
        int n = m.Length;
        var present = Enumerable.Range(0, n).Where(i => m[i] is not null).ToArray();
        var res = new Measured { M = m, D = d, R = new Tensor?[n] };
        // float64 always, as on the fused path (whose sums are float64): every shard hands its collective the same dtype.
        const ScalarType dtype = ScalarType.Float64;
        var device = present.Length > 0 ? m[present[0]]!.device : _params[0].device;
        var zero = torch.zeros(1, dtype, device);
        Tensor Squares(Tensor?[] x) => torch.cat(Enumerable.Range(0, n).Select(i => x[i] is Tensor t ? t.to(dtype, device).square() : zero).ToArray(), 0);
        var mSq = Squares(m);
        var dSq = Squares(d);
        bool global = Options.Granularity == GraftGranularity.Global;
        var squares = global
            ? torch.stack(new[] { mSq.sum(), dSq.sum() })
            : torch.cat(new[] { mSq, dSq, mSq.sum().view(1), dSq.sum().view(1) }, 0);
        long length = squares.shape[0];
        reduce(squares);
        if (squares.dim() != 1 || squares.shape[0] != length || squares.dtype != dtype)
            throw new InvalidOperationException(
                $"GraftOptions.ReduceSquaredNorms must sum its tensor across shards in place, keeping its shape [{length}] and dtype {dtype}; "
                + $"it left shape [{string.Join(", ", squares.shape)}] and dtype {squares.dtype}.");
        var norms = squares.sqrt();
        res.GM = norms[length - 2];
        res.GD = norms[length - 1];
        res.GR = Ratio(res.GM, res.GD);
        if (global) {
            foreach (var i in present) res.R[i] = res.GR.to(m[i]!.dtype, m[i]!.device).view(1);
            return res;
        }
        var mNorm = norms.narrow(0, 0, n);
        var dNorm = norms.narrow(0, n, n);
        var ratio = Ratio(mNorm, dNorm);
        foreach (var i in present) {
            var (t, dev) = (m[i]!.dtype, m[i]!.device);
            res.M[i] = mNorm.narrow(0, i, 1).to(t, dev);
            res.D[i] = dNorm.narrow(0, i, 1).to(t, dev);
            res.R[i] = ratio.narrow(0, i, 1).to(t, dev);
        }
        return res;
    }

    /// <summary>The ratio to multiply a whole tensor with (0-d), or the per-segment column for blocks.</summary>
    private static Tensor Column(Tensor ratio) => ratio.unsqueeze(1);

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

    /// <summary>p − saved: in place in p for float32/float64, in a float32 temporary for half precision.</summary>
    private static Tensor Difference(Parameter p, Tensor saved)
    {
        if (!IsLowPrecision(p)) {
            p.sub_(saved);
            return p;
        }
        return p.to_type(ScalarType.Float32).sub_(saved);
    }

    /// <summary>A scratch buffer of the graft: reused while it still has <paramref name="like"/>'s shape, dtype and device.</summary>
    private static Tensor Fit(ref Tensor? buffer, Tensor like, ScalarType? dtype = null)
    {
        if (buffer is Tensor b && TensorLayout.SameLayout(b, like, dtype)) return b;
        buffer?.Dispose();
        buffer = torch.empty(like.shape, dtype ?? like.dtype, like.device).DetachFromDisposeScope();
        return buffer;
    }
}
