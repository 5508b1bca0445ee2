namespace AdaGraft.Grafting;

/// <summary>
/// The norms a grafted step measured, left on the device (reading them synchronises; do it every k steps, not
/// every step). Per tensor, each entry is a 1-d tensor with one value per segment: one segment per tensor, or one
/// per block for <see cref="GraftGranularity.PerBlock"/>. Entries are null for tensors without a gradient.
/// Owned by the optimizer and replaced at its next step: copy what you keep.
/// </summary>
/// <remarks>
/// After a fused CPU step the values are measured on the host; the tensors are then created on first access, so a
/// training loop that never reads them pays nothing for them.
/// </remarks>
public sealed class GraftStepNorms : IDisposable
{
    private Tensor?[]? _magnitude, _direction, _ratio;
    private Tensor? _globalMagnitude, _globalDirection, _globalRatio;
    private readonly HostStepNorms? _host;
    private bool _disposed;

    internal GraftStepNorms(Tensor?[] magnitude, Tensor?[] direction, Tensor?[] ratio, Tensor globalMagnitude, Tensor globalDirection, Tensor globalRatio)
    {
        _magnitude = magnitude;
        _direction = direction;
        _ratio = ratio;
        _globalMagnitude = globalMagnitude;
        _globalDirection = globalDirection;
        _globalRatio = globalRatio;
    }

    internal GraftStepNorms(HostStepNorms host) => _host = host;

    /// <summary>The host values behind these norms when the step measured them on the host (fused CPU path), else null.</summary>
    internal HostStepNorms? Host => _host;

    /// <summary>‖ΔM‖ per tensor (per segment).</summary>
    public IReadOnlyList<Tensor?> Magnitude => Materialized()._magnitude!;

    /// <summary>‖ΔD‖ per tensor (per segment).</summary>
    public IReadOnlyList<Tensor?> Direction => Materialized()._direction!;

    /// <summary>The ratio applied per tensor (per segment): ‖ΔM‖/‖ΔD‖, 0 where ‖ΔD‖ = 0.</summary>
    public IReadOnlyList<Tensor?> Ratio => Materialized()._ratio!;

    /// <summary>‖ΔM‖ over all tensors (0-d).</summary>
    public Tensor GlobalMagnitude => Materialized()._globalMagnitude!;

    /// <summary>‖ΔD‖ over all tensors (0-d).</summary>
    public Tensor GlobalDirection => Materialized()._globalDirection!;

    /// <summary>‖ΔM‖/‖ΔD‖ over all tensors (0-d); the ratio applied under global grafting.</summary>
    public Tensor GlobalRatio => Materialized()._globalRatio!;

    private GraftStepNorms Materialized()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (_magnitude is not null) return this;
        var h = _host!;
        int n = h.First.Length;
        Tensor?[] m = new Tensor?[n], d = new Tensor?[n], r = new Tensor?[n];
        for (int i = 0; i < n; i++) {
            if (h.Count[i] == 0) continue;
            m[i] = Make(h.Magnitude.AsSpan(h.First[i], h.Count[i]).ToArray(), h.Dtype[i]);
            d[i] = Make(h.Direction.AsSpan(h.First[i], h.Count[i]).ToArray(), h.Dtype[i]);
            r[i] = Make(h.Ratio.AsSpan(h.First[i], h.Count[i]).ToArray(), h.Dtype[i]);
        }
        _globalMagnitude = torch.tensor(h.GlobalMagnitude, h.GlobalDtype).DetachFromDisposeScope();
        _globalDirection = torch.tensor(h.GlobalDirection, h.GlobalDtype).DetachFromDisposeScope();
        _globalRatio = torch.tensor(h.GlobalRatio, h.GlobalDtype).DetachFromDisposeScope();
        (_magnitude, _direction, _ratio) = (m, d, r);
        return this;

        // Created outside any scope the caller may have open: these tensors belong to this object.
        static Tensor Make(double[] values, ScalarType dtype) => torch.tensor(values, dtype).DetachFromDisposeScope();
    }

    /// <summary>Frees the tensors.</summary>
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        foreach (var list in new[] { _magnitude, _direction, _ratio })
            if (list is not null)
                foreach (var t in list) t?.Dispose();
        _globalMagnitude?.Dispose();
        _globalDirection?.Dispose();
        _globalRatio?.Dispose();
    }
}

/// <summary>
/// Norms measured on the host by a fused CPU step: per segment (tensors' segments laid end to end), with each
/// tensor's first segment, segment count (0: no gradient) and dtype, and the global values.
/// </summary>
internal sealed record HostStepNorms(
    double[] Magnitude, double[] Direction, double[] Ratio, int[] First, int[] Count, ScalarType[] Dtype,
    double GlobalMagnitude, double GlobalDirection, double GlobalRatio, ScalarType GlobalDtype)
{
    /// <summary>
    /// m / d with 0 where 1/d is not finite: the host form of the tensor path's <c>d.reciprocal().nan_to_num_(0, 0, 0).mul_(m)</c>.
    /// </summary>
    public static double RatioOf(double m, double d)
    {
        double inv = 1 / d;
        return (double.IsFinite(inv) ? inv : 0) * m;
    }
}
