namespace AdaGraft.Benchmarks;

/// <summary>
/// A graft's parameters, gradients and state as separate tensors (as a model has them), for the experiments that step
/// separate tensors: W and G are copies of consecutive <c>elements</c>-long pieces of one flat tensor each; the
/// momentum Mm and Adam's moments M1, M2 start at zero.
/// </summary>
internal class SegmentedGraftTensors : IDisposable
{
    public readonly Tensor[] W, G, Mm, M1, M2;

    /// <summary>Steps taken so far (for Adam's bias correction).</summary>
    public long T;

    public SegmentedGraftTensors(Tensor w, Tensor g, int segments, long elements)
    {
        Tensor[] Split(Tensor x, bool zero) => Enumerable.Range(0, segments)
            .Select(i => zero ? torch.zeros(elements, device: x.device) : x.narrow(0, i * elements, elements).clone()).ToArray();
        W = Split(w, false);
        G = Split(g, false);
        Mm = Split(w, true);
        M1 = Split(w, true);
        M2 = Split(w, true);
    }

    /// <summary>Every tensor this object allocated, in the order <see cref="Dispose"/> frees them.</summary>
    protected virtual IEnumerable<Tensor> Owned => W.Concat(G).Concat(Mm).Concat(M1).Concat(M2);

    public void Dispose()
    {
        foreach (var t in Owned) t.Dispose();
    }
}
