namespace AdaGraft.Rules;

/// <summary>
/// How a tensor is laid out (dtype, device, shape), compared and described the same way by every check: the step's
/// gradient and state checks, the graft's own buffers, scratch and backup buffers. Shapes are compared dimension by
/// dimension: reading a whole shape allocates, and these run for every tensor of every step.
/// </summary>
internal static class TensorLayout
{
    /// <summary>True when <paramref name="a"/> and <paramref name="b"/> have one shape.</summary>
    public static bool SameShape(TensorRef a, TensorRef b)
    {
        long rank = NativeTensor.Dim(a);
        if (NativeTensor.Dim(b) != rank) return false;
        for (int d = 0; d < rank; d++) if (NativeTensor.Size(a, d) != NativeTensor.Size(b, d)) return false;
        return true;
    }

    /// <summary>True when <paramref name="t"/> has <paramref name="like"/>'s shape and device, and its dtype (or <paramref name="dtype"/>).</summary>
    public static bool SameLayout(Tensor t, Tensor like, ScalarType? dtype = null) =>
        NativeTensor.Dtype(t) == (dtype ?? NativeTensor.Dtype(like)) && SameDevice(t, like) && SameShape(t, like);

    /// <summary>True when <paramref name="a"/> and <paramref name="b"/> are on one device.</summary>
    public static bool SameDevice(TensorRef a, TensorRef b) =>
        NativeTensor.DeviceType(a) == NativeTensor.DeviceType(b) && NativeTensor.DeviceIndex(a) == NativeTensor.DeviceIndex(b);

    /// <summary>"parameter 3 of shape [2, 3]": how messages name a parameter (its index in the optimizer's list).</summary>
    public static string Describe(Tensor p, int index) =>
        index >= 0 ? $"parameter {index} of shape {Shape(p.shape)}" : $"parameter of shape {Shape(p.shape)}";

    /// <summary>"[2, 3]".</summary>
    public static string Shape(long[] shape) => "[" + string.Join(", ", shape) + "]";
}
