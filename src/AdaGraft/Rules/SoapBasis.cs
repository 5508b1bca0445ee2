namespace AdaGraft.Rules;

/// <summary>
/// How SOAP sees one tensor: the shape its preconditioner works on (the parameter's, or with <c>merge_dims</c> its
/// dimensions merged while their product stays within <c>max_precond_dim</c>) and which of those dimensions carry a
/// factor and an eigenbasis (size ≤ <c>max_precond_dim</c>; a vector only with <c>precondition_1d</c>; none with
/// <c>identity_basis</c>). A dimension without a basis is left as it is (identity).
/// </summary>
public sealed class SoapLayout : IEquatable<SoapLayout>
{
    private SoapLayout(long[] shape, bool[] preconditioned)
    {
        Shape = shape;
        Preconditioned = preconditioned;
    }

    /// <summary>The shape the preconditioner works on (a reshape of the parameter).</summary>
    public long[] Shape { get; }

    /// <summary>Per dimension of <see cref="Shape"/>: true when it has a factor and an eigenbasis.</summary>
    public bool[] Preconditioned { get; }

    /// <summary>The layout of a parameter of shape <paramref name="shape"/> under <paramref name="o"/> (every option set).</summary>
    public static SoapLayout For(long[] shape, SoapOptions o)
    {
        ArgumentNullException.ThrowIfNull(shape);
        ArgumentNullException.ThrowIfNull(o);
        long max = o.MaxPreconditionerDim!.Value;
        var work = shape.Length >= 2 && o.MergeDims!.Value && !shape.Contains(0) ? Merge(shape, max) : shape.ToArray();
        bool eligible = !o.IdentityBasis!.Value && (shape.Length != 1 || o.Precondition1D!.Value);
        return new SoapLayout(work, work.Select(n => eligible && n > 0 && n <= max).ToArray());
    }

    /// <summary>
    /// Merges neighbouring dimensions, left to right, while their product stays within <paramref name="max"/>; a
    /// dimension that does not fit starts a new group (the reference implementation's rule: [2, 3, 4] with 6 → [6, 4]).
    /// </summary>
    public static long[] Merge(long[] shape, long max)
    {
        ArgumentNullException.ThrowIfNull(shape);
        var merged = new List<long>();
        long run = 1;
        foreach (long n in shape) {
            if (run * n <= max) {
                run *= n;
            } else if (run > 1) {
                merged.Add(run);
                run = n;
            } else {
                merged.Add(n);
            }
        }
        if (run > 1 || merged.Count == 0) merged.Add(run);
        return merged.ToArray();
    }

    /// <summary>True when any dimension has a basis.</summary>
    public bool Any => Preconditioned.Any(p => p);

    /// <inheritdoc />
    public bool Equals(SoapLayout? other) =>
        other is not null && Shape.SequenceEqual(other.Shape) && Preconditioned.SequenceEqual(other.Preconditioned);

    /// <inheritdoc />
    public override bool Equals(object? obj) => Equals(obj as SoapLayout);

    /// <inheritdoc />
    public override int GetHashCode() => HashCode.Combine(Shape.Length, Shape.Aggregate(17L, (a, b) => a * 31 + b));

    /// <summary>"[6, 4] with bases on dimensions 0, 1".</summary>
    public override string ToString()
    {
        var dims = Enumerable.Range(0, Shape.Length).Where(d => Preconditioned[d]).ToArray();
        return TensorLayout.Shape(Shape) + (dims.Length == 0 ? " without bases" : $" with bases on dimensions {string.Join(", ", dims)}");
    }
}

/// <summary>
/// SOAP's matrix work on one tensor, in its <see cref="SoapLayout"/>: rotations into and out of the eigenbasis,
/// the factor updates, the first eigendecomposition and the power-iteration + QR refresh. Self-contained (no other
/// preconditioner's code).
/// </summary>
internal static class SoapBasis
{
    /// <summary>
    /// <paramref name="x"/> (shaped like the parameter) in the eigenbasis (<c>X ×_d Q_dᵀ</c> for every dimension d
    /// with a basis: <c>Q_Lᵀ·G·Q_R</c> for a matrix), or back (<paramref name="back"/>: <c>X ×_d Q_d</c>), shaped like the parameter.
    /// </summary>
    public static Tensor Rotate(Tensor x, SoapState state, bool back)
    {
        var layout = state.Layout;
        var y = x.reshape(layout.Shape);
        for (int d = 0; d < layout.Shape.Length; d++) {
            if (!layout.Preconditioned[d]) continue;
            var q = state.BasisSlot(d);
            var moved = y.movedim(new long[] { d }, new long[] { -1 });
            y = (back ? moved.matmul(q.t()) : moved.matmul(q)).movedim(new long[] { -1 }, new long[] { d });
        }
        return y.reshape(state.Parameter.shape);
    }

    /// <summary><c>F_d ← β·F_d + (1−β)·G_(d)·G_(d)ᵀ</c> for every dimension d with a basis (G_(d): the mode-d unfolding).</summary>
    public static void UpdateFactors(Tensor grad, SoapState state, double shampooBeta)
    {
        var layout = state.Layout;
        var g = grad.reshape(layout.Shape);
        for (int d = 0; d < layout.Shape.Length; d++) {
            if (!layout.Preconditioned[d]) continue;
            var unfolded = g.movedim(new long[] { d }, new long[] { 0 }).reshape(layout.Shape[d], -1);
            state.FactorSlot(d).lerp_(unfolded.matmul(unfolded.t()), 1 - shampooBeta);
        }
    }

    /// <summary>
    /// The first bases: eigenvectors of each factor (plus 1e-30·I, as the reference does), by decreasing eigenvalue,
    /// in at least float32; retried in float64 when that fails, the identity when that fails too.
    /// </summary>
    public static void InitializeBases(SoapState state)
    {
        var layout = state.Layout;
        for (int d = 0; d < layout.Shape.Length; d++) {
            if (!layout.Preconditioned[d]) continue;
            var f = state.FactorSlot(d);
            var basis = state.BasisSlot(d);
            basis.copy_(Eigenvectors(f) ?? Eigenvectors(f.to_type(ScalarType.Float64)) ?? torch.eye(f.shape[0], dtype: f.dtype, device: f.device));
        }
    }

    private static Tensor? Eigenvectors(Tensor factor)
    {
        var f = AtLeastFloat32(factor);
        try {
            var (_, vectors) = torch.linalg.eigh(f + 1e-30 * torch.eye(f.shape[0], dtype: f.dtype, device: f.device));
            return vectors.flip(1);
        } catch (Exception e) when (e is System.Runtime.InteropServices.ExternalException or InvalidOperationException) {
            return null;
        }
    }

    /// <summary>
    /// One power iteration and a QR per basis: the columns of <c>Q</c> are sorted by their estimated eigenvalues
    /// <c>diag(Qᵀ·F·Q)</c>, decreasing, the second moment's entries along that dimension follow them, and
    /// <c>Q ← qr(F·Q_sorted).Q</c>. The first moment (kept in the eigenbasis) is carried into the new basis.
    /// </summary>
    public static void Refresh(SoapState state, Tensor firstMoment, Tensor secondMoment)
    {
        var layout = state.Layout;
        var inOriginalSpace = Rotate(firstMoment, state, back: true);
        var v = secondMoment.reshape(layout.Shape);
        for (int d = 0; d < layout.Shape.Length; d++) {
            if (!layout.Preconditioned[d]) continue;
            var basis = state.BasisSlot(d);
            var f = AtLeastFloat32(state.FactorSlot(d));
            var q = AtLeastFloat32(basis);
            var order = (q * f.matmul(q)).sum(0L).argsort(descending: true);
            v = v.index_select(d, order);
            var (qNew, _) = torch.linalg.qr(f.matmul(q.index_select(1, order)));
            basis.copy_(qNew);
        }
        secondMoment.copy_(v.reshape(state.Parameter.shape));
        firstMoment.copy_(Rotate(inOriginalSpace, state, back: false));
    }

    private static Tensor AtLeastFloat32(Tensor t) =>
        t.dtype is ScalarType.Float32 or ScalarType.Float64 ? t : t.to_type(ScalarType.Float32);
}
