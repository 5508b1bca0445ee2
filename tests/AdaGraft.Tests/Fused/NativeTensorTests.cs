using AdaGraft.Rules;

namespace AdaGraft.Tests.Fused;

/// <summary>
/// The step's metadata reads through TorchSharp's native exports (<see cref="NativeTensor"/>) give what TorchSharp's
/// own properties give, for every kind of tensor a step can meet.
/// </summary>
public class NativeTensorTests
{
    private static Tensor[] Kinds()
    {
        var m = torch.arange(24, ScalarType.Float32).reshape(2, 3, 4);
        return new[] {
            m,
            m.transpose(0, 2),                                   // strided view
            m.narrow(2, 1, 2),                                   // non-contiguous, with a storage offset
            m[1],                                                // contiguous, with a storage offset
            torch.tensor(3.5, ScalarType.Float64),               // 0-d
            torch.zeros(new long[] { 0, 5 }, ScalarType.Float64), // no elements
            torch.ones(7, ScalarType.Float16),
            torch.ones(7, ScalarType.BFloat16),
            torch.arange(6, ScalarType.Int64),
            torch.ones(new long[] { 1, 1, 1, 1, 1, 1, 1, 1, 1, 2 }), // rank 10
            torch.sparse_coo_tensor(torch.tensor(new long[] { 0, 2 }).reshape(1, 2), torch.ones(2), new long[] { 4 }),
        };
    }

    [Fact]
    public void TheExportsAreFoundHere() =>
        NativeTensor.Available.Should().BeTrue($"libLibTorchSharp.so exports the THSTensor functions ({NativeTensor.Reason})");

    [Fact]
    public void EveryReadEqualsTorchSharpsProperty()
    {
        using var scope = torch.NewDisposeScope();
        foreach (var t in Kinds()) {
            string what = $"{t.dtype} {TensorLayout.Shape(t.shape)} (sparse {t.is_sparse})";
            NativeTensor.Dtype(t).Should().Be(t.dtype, what);
            NativeTensor.DeviceType(t).Should().Be(t.device_type, what);
            NativeTensor.DeviceIndex(t).Should().Be(t.device_index, what);
            NativeTensor.IsSparse(t).Should().Be(t.is_sparse, what);
            NativeTensor.Numel(t).Should().Be(t.numel(), what);
            NativeTensor.ElementSize(t).Should().Be(t.ElementSize, what);
            NativeTensor.Dim(t).Should().Be(t.dim(), what);
            for (int d = 0; d < t.dim(); d++) NativeTensor.Size(t, d).Should().Be(t.size(d), what);
            if (t.is_sparse) NativeTensor.IsContiguous(t).Should().BeFalse(what);
            else NativeTensor.IsContiguous(t).Should().Be(t.is_contiguous(), what);
        }
    }

    [Fact]
    public void TheDataAddressIsWhereTheElementsAreAndLeavesNoErrorBehind()
    {
        using var scope = torch.NewDisposeScope();
        var m = torch.arange(24, ScalarType.Float32).reshape(2, 3, 4);
        foreach (var t in new[] { m, m[1], m[1][2] }) {
            var read = new float[t.numel()];
            System.Runtime.InteropServices.Marshal.Copy(NativeTensor.Data(t), read, 0, read.Length);
            read.Should().Equal(t.data<float>().ToArray(), "the address of a view with a storage offset is its first element's");
        }
        // The exports record errors for TorchSharp's next check: a read must leave none (this raised if one were left);
        // a sparse tensor's contiguity is not asked of libtorch, which would throw.
        var sparse = torch.sparse_coo_tensor(torch.tensor(new long[] { 0, 2 }).reshape(1, 2), torch.ones(2), new long[] { 4 });
        NativeTensor.IsContiguous(sparse).Should().BeFalse();
        _ = m.device_type; // a TorchSharp property that checks for a recorded error after a call that records none
        _ = torch.ones(3).add(1).sum().ToSingle();
    }

    [Fact]
    public void TheMetadataOfATensorChangedInPlaceIsReadAfresh()
    {
        using var scope = torch.NewDisposeScope();
        var p = new Parameter(torch.zeros(64));
        NativeTensor.Numel(p).Should().Be(64);
        var before = NativeTensor.Data(p);
        using (torch.no_grad()) p.set_(torch.zeros(new long[] { 8, 2 }, ScalarType.Float32));
        NativeTensor.Numel(p).Should().Be(16);
        NativeTensor.Dim(p).Should().Be(2);
        NativeTensor.Size(p, 0).Should().Be(8);
        NativeTensor.Data(p).Should().NotBe(before, "set_ gave the parameter new storage");
    }
}
