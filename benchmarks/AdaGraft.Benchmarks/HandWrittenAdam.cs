namespace AdaGraft.Benchmarks;

/// <summary>
/// The baseline a careful user would write: PyTorch's Adam, in place, on preallocated buffers
/// (m, v and one denominator buffer per tensor), no per-op temporaries.
/// </summary>
public sealed class HandWrittenAdam : IDisposable
{
    private readonly List<Parameter> _ps;
    private readonly Tensor[] _m, _v, _denom;
    private readonly double _lr, _b1 = 0.9, _b2 = 0.999, _eps = 1e-8;
    private long _t;

    public HandWrittenAdam(IEnumerable<Parameter> ps, double lr)
    {
        _ps = ps.ToList();
        _lr = lr;
        _m = _ps.Select(p => torch.zeros_like(p)).ToArray();
        _v = _ps.Select(p => torch.zeros_like(p)).ToArray();
        _denom = _ps.Select(p => torch.zeros_like(p)).ToArray();
    }

    public void Step()
    {
        _t++;
        double bc1 = 1 - Math.Pow(_b1, _t), bc2 = 1 - Math.Pow(_b2, _t);
        using var noGrad = torch.no_grad();
        for (int i = 0; i < _ps.Count; i++) {
            using var scope = torch.NewDisposeScope();
            var p = _ps[i];
            var g = p.grad!;
            _m[i].mul_(_b1).add_(g, 1 - _b1);
            _v[i].mul_(_b2).addcmul_(g, g, 1 - _b2);
            _denom[i].copy_(_v[i]).sqrt_().div_(Math.Sqrt(bc2)).add_(_eps);
            p.addcdiv_(_m[i], _denom[i], -_lr / bc1);
        }
    }

    public void Dispose()
    {
        foreach (var t in _m.Concat(_v).Concat(_denom)) t.Dispose();
    }
}
