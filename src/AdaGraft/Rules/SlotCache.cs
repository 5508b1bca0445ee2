namespace AdaGraft.Rules;

/// <summary>
/// What a state's checks found out about its slots, kept while it still holds, so that a step over many small tensors
/// does not read the same metadata through TorchSharp every time: whether the slots fit the parameter's layout, whether
/// the fused kernels may use them, and their data addresses. The slots are the state's own tensors, so these facts
/// change only when a slot is replaced (allocated, loaded, moved or freed: <see cref="Invalidate"/>) or when the
/// parameter's layout changes (compared on every use). The state stops asking once a slot was handed to the caller,
/// who could resize it or give it new storage.
/// </summary>
internal sealed class SlotCache
{
    private int _epoch;
    private int _fitEpoch = -1;
    private ScalarType _dtype;
    private DeviceType _deviceType;
    private int _deviceIndex;
    private long[] _shape = Array.Empty<long>();
    private int _fuseEpoch = -1;
    private ScalarType _fuseDtype;
    private bool _fusable;
    private readonly IntPtr[] _addresses;
    private readonly int[] _addressEpochs;

    public SlotCache(int slots)
    {
        _addresses = new IntPtr[slots];
        _addressEpochs = new int[slots];
        Array.Fill(_addressEpochs, -1);
    }

    /// <summary>Forgets everything: a slot was replaced.</summary>
    public void Invalidate() => _epoch++;

    /// <summary>True when the slots were found to fit a parameter laid out as <paramref name="p"/> is now, and none was replaced since.</summary>
    public bool StillFits(Tensor p)
    {
        if (_fitEpoch != _epoch || NativeTensor.Dtype(p) != _dtype || NativeTensor.DeviceType(p) != _deviceType
            || NativeTensor.DeviceIndex(p) != _deviceIndex) return false;
        long rank = NativeTensor.Dim(p);
        if (rank != _shape.Length) return false;
        for (int d = 0; d < rank; d++) if (NativeTensor.Size(p, d) != _shape[d]) return false;
        return true;
    }

    /// <summary>Records that the slots fit <paramref name="p"/>'s layout as it is now.</summary>
    public void Fitted(Tensor p)
    {
        _dtype = p.dtype;
        _deviceType = p.device_type;
        _deviceIndex = p.device_index;
        _shape = p.shape;
        _fitEpoch = _epoch;
    }

    /// <summary>Whether the slots may take a fused <paramref name="dtype"/> step, when known and none was replaced since.</summary>
    public bool? Fusable(ScalarType dtype) => _fuseEpoch == _epoch && _fuseDtype == dtype ? _fusable : null;

    /// <summary>Records whether the slots may take a fused <paramref name="dtype"/> step.</summary>
    public void SetFusable(ScalarType dtype, bool fusable)
    {
        _fuseDtype = dtype;
        _fusable = fusable;
        _fuseEpoch = _epoch;
    }

    /// <summary>The data address of slot <paramref name="index"/> (<paramref name="slot"/>), read once per replacement.</summary>
    public IntPtr Address(int index, Tensor slot)
    {
        if (_addressEpochs[index] != _epoch) {
            _addresses[index] = FusedCpu.Pointer(slot);
            _addressEpochs[index] = _epoch;
        }
        return _addresses[index];
    }
}
