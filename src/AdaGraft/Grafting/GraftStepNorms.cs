using System;
using System.Collections.Generic;
using static TorchSharp.torch;

namespace AdaGraft.Grafting;

/// <summary>
/// The norms a grafted step measured, left on the device (reading them synchronises; do it every k steps, not
/// every step). Per tensor, each entry is a 1-d tensor with one value per segment: one segment per tensor, or one
/// per block for <see cref="GraftGranularity.PerBlock"/>. Entries are null for tensors without a gradient.
/// Owned by the optimizer and replaced at its next step: copy what you keep.
/// </summary>
public sealed class GraftStepNorms : IDisposable
{
    internal GraftStepNorms(Tensor?[] magnitude, Tensor?[] direction, Tensor?[] ratio, Tensor globalMagnitude, Tensor globalDirection, Tensor globalRatio)
    {
        Magnitude = magnitude;
        Direction = direction;
        Ratio = ratio;
        GlobalMagnitude = globalMagnitude;
        GlobalDirection = globalDirection;
        GlobalRatio = globalRatio;
    }

    /// <summary>‖ΔM‖ per tensor (per segment).</summary>
    public IReadOnlyList<Tensor?> Magnitude { get; }

    /// <summary>‖ΔD‖ per tensor (per segment).</summary>
    public IReadOnlyList<Tensor?> Direction { get; }

    /// <summary>The ratio applied per tensor (per segment): ‖ΔM‖/‖ΔD‖, 0 where ‖ΔD‖ = 0.</summary>
    public IReadOnlyList<Tensor?> Ratio { get; }

    /// <summary>‖ΔM‖ over all tensors (0-d).</summary>
    public Tensor GlobalMagnitude { get; }

    /// <summary>‖ΔD‖ over all tensors (0-d).</summary>
    public Tensor GlobalDirection { get; }

    /// <summary>‖ΔM‖/‖ΔD‖ over all tensors (0-d); the ratio applied under global grafting.</summary>
    public Tensor GlobalRatio { get; }

    /// <summary>Frees the tensors.</summary>
    public void Dispose()
    {
        foreach (var list in new[] { Magnitude, Direction, Ratio })
            foreach (var t in list) t?.Dispose();
        GlobalMagnitude.Dispose();
        GlobalDirection.Dispose();
        GlobalRatio.Dispose();
    }
}
