using System;
using System.Collections.Generic;
using AdaGraft.Grafting;
using AdaGraft.Lab.Training;
using static TorchSharp.torch;

namespace AdaGraft.Lab.Discovery;

/// <summary>
/// Records a graft's global step-norm ratio ‖ΔM‖/‖ΔD‖ (<c>graft.LastNorms.GlobalRatio</c>) at every step into a
/// preallocated device buffer, reading it to the host only every <see cref="ReadEvery"/> steps (no per-step
/// synchronisation). Section 3.4 of the paper: the recorded ratio is the learning rate the global graft applied to
/// D's direction, from which a schedule correction for D is fitted.
/// </summary>
public sealed class GlobalRatioRecorder : IDisposable
{
    private readonly DeviceSeriesRecorder _ratio;

    /// <summary>A recorder for <paramref name="steps"/> steps on <paramref name="device"/>.</summary>
    public GlobalRatioRecorder(int steps, Device device, int readEvery = 50)
    {
        _ratio = new DeviceSeriesRecorder(steps, device, readEvery);
    }

    /// <summary>Steps between host reads.</summary>
    public int ReadEvery => _ratio.ReadEvery;

    /// <summary>Steps recorded.</summary>
    public int Count => _ratio.Count;

    /// <summary>The ratios read to the host so far, one per step from step 0.</summary>
    public IReadOnlyList<double> Ratios => _ratio.HostValues;

    /// <summary>Records the ratio of <paramref name="graft"/>'s last step (call right after <c>graft.step()</c>).</summary>
    public void Record(GraftOptimizer graft)
    {
        ArgumentNullException.ThrowIfNull(graft);
        var norms = graft.LastNorms ?? throw new InvalidOperationException("The graft has not stepped yet: record after graft.step().");
        _ratio.Record(norms.GlobalRatio);
    }

    /// <summary>Reads the remaining steps to the host and returns all ratios.</summary>
    public IReadOnlyList<double> Finish() => _ratio.Flush();

    /// <summary>Frees the device buffer.</summary>
    public void Dispose() => _ratio.Dispose();
}
