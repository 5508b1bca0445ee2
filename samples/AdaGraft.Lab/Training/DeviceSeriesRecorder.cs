using System;
using System.Collections.Generic;
using TorchSharp;
using static TorchSharp.torch;

namespace AdaGraft.Lab.Training;

/// <summary>
/// Records one scalar per training step without synchronising with the device: each step copies a 0-d device
/// tensor into a preallocated device buffer (<c>buffer[t].copy_(value)</c>); every <see cref="ReadEvery"/> steps the
/// new part of the buffer is read to the host in one transfer.
/// </summary>
public sealed class DeviceSeriesRecorder : IDisposable
{
    private readonly Tensor _buffer;
    private readonly List<double> _host;
    private int _count;
    private bool _disposed;

    /// <summary>A recorder for at most <paramref name="capacity"/> steps on <paramref name="device"/>.</summary>
    public DeviceSeriesRecorder(int capacity, Device device, int readEvery = 50)
    {
        if (capacity < 1) throw new ArgumentOutOfRangeException(nameof(capacity), capacity, "Capacity must be at least 1.");
        if (readEvery < 1) throw new ArgumentOutOfRangeException(nameof(readEvery), readEvery, "readEvery must be at least 1.");
        ArgumentNullException.ThrowIfNull(device);
        _buffer = torch.full(capacity, double.NaN, dtype: ScalarType.Float32, device: device);
        _host = new List<double>(capacity);
        ReadEvery = readEvery;
    }

    /// <summary>Steps between host reads.</summary>
    public int ReadEvery { get; }

    /// <summary>Steps recorded so far.</summary>
    public int Count => _count;

    /// <summary>Capacity in steps.</summary>
    public long Capacity => _buffer.shape[0];

    /// <summary>The values read to the host so far (a prefix of the recorded steps).</summary>
    public IReadOnlyList<double> HostValues => _host;

    /// <summary>Raised after each host read with the values read so far.</summary>
    public event Action<IReadOnlyList<double>>? Read;

    /// <summary>Records <paramref name="value"/> (a one-element device tensor) as the next step; reads to the host
    /// every <see cref="ReadEvery"/> steps. Returns true when it read.</summary>
    public bool Record(Tensor value)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        ArgumentNullException.ThrowIfNull(value);
        if (_count >= Capacity)
            throw new InvalidOperationException($"The recorder holds {Capacity} steps; it is full.");
        using (torch.no_grad())
        using (var slot = _buffer[_count]) {
            slot.copy_(value.detach().reshape(Array.Empty<long>()));
        }
        _count++;
        if (_count % ReadEvery == 0) {
            Flush();
            return true;
        }
        return false;
    }

    /// <summary>Reads every recorded step not yet on the host (synchronises).</summary>
    public IReadOnlyList<double> Flush()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        int from = _host.Count;
        if (_count > from) {
            using var part = _buffer.narrow(0, from, _count - from).cpu();
            foreach (var v in part.data<float>()) _host.Add(v);
            Read?.Invoke(_host);
        }
        return _host;
    }

    /// <summary>Frees the device buffer.</summary>
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        _buffer.Dispose();
    }
}
