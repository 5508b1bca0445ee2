using System;
using System.IO;
using System.IO.Compression;
using System.Linq;
using AdaGraft.Lab.Data;
using FluentAssertions;
using Xunit;

namespace AdaGraft.Lab.Tests;

public sealed class IdxTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "adagraft-idx-" + Guid.NewGuid().ToString("N"));

    public IdxTests() => Directory.CreateDirectory(_dir);

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string PathOf(string name) => Path.Combine(_dir, name);

    public static TheoryData<string> Names() => new() { "tiny.idx", "tiny.idx.gz" };

    [Theory]
    [MemberData(nameof(Names))]
    public void RoundTripsUnsignedBytes(string name)
    {
        var values = Enumerable.Range(0, 2 * 3 * 4).Select(i => (byte)(i * 11)).ToArray();
        IdxWriter.Write(PathOf(name), new IdxArray(IdxDataType.UInt8, new[] { 2, 3, 4 }, values));
        var back = IdxReader.Read(PathOf(name));
        back.DataType.Should().Be(IdxDataType.UInt8);
        back.Dimensions.Should().Equal(2, 3, 4);
        back.AsBytes().Should().Equal(values);
    }

    [Fact]
    public void WritesTheDocumentedBytesBigEndian()
    {
        var bytes = IdxWriter.ToBytes(new IdxArray(IdxDataType.Int32, new[] { 2 }, new[] { 1, -2 }));
        bytes.Should().Equal(0, 0, 0x0C, 1, 0, 0, 0, 2, 0, 0, 0, 1, 0xFF, 0xFF, 0xFF, 0xFE);
    }

    [Fact]
    public void RoundTripsEveryElementType()
    {
        var arrays = new IdxArray[] {
            new(IdxDataType.Int8, new[] { 3 }, new sbyte[] { -128, 0, 127 }),
            new(IdxDataType.Int16, new[] { 1, 3 }, new short[] { short.MinValue, -1, short.MaxValue }),
            new(IdxDataType.Int32, new[] { 2, 2 }, new[] { int.MinValue, -7, 0, int.MaxValue }),
            new(IdxDataType.Float32, new[] { 2 }, new[] { -1.5f, float.Epsilon }),
            new(IdxDataType.Float64, new[] { 1, 1, 2 }, new[] { Math.PI, -0.0 }),
        };
        foreach (var a in arrays) {
            var path = PathOf($"t{(byte)a.DataType}.gz");
            IdxWriter.Write(path, a);
            var b = IdxReader.Read(path);
            b.DataType.Should().Be(a.DataType);
            b.Dimensions.Should().Equal(a.Dimensions);
            b.Values.Cast<object>().Should().Equal(a.Values.Cast<object>());
        }
    }

    [Fact]
    public void WrongMagicNumberIsAClearError()
    {
        File.WriteAllBytes(PathOf("bad"), new byte[] { 0x50, 0x4B, 0x03, 0x04, 0, 0, 0, 1, 7 });
        var act = () => IdxReader.Read(PathOf("bad"));
        act.Should().Throw<InvalidDataException>().WithMessage("*bad*not an IDX file*magic number 0x504B0304*");
    }

    [Fact]
    public void UnknownElementTypeIsAClearError()
    {
        var act = () => IdxReader.Parse(new byte[] { 0, 0, 0x07, 1, 0, 0, 0, 0 }, "x");
        act.Should().Throw<InvalidDataException>().WithMessage("*unknown IDX element type 0x07*");
    }

    [Fact]
    public void TruncatedDataIsAClearError()
    {
        var full = IdxWriter.ToBytes(new IdxArray(IdxDataType.UInt8, new[] { 4, 5 }, new byte[20]));
        File.WriteAllBytes(PathOf("short.idx"), full[..^3]);
        var act = () => IdxReader.Read(PathOf("short.idx"));
        act.Should().Throw<InvalidDataException>().WithMessage("*short.idx*truncated IDX data*need 20 bytes*only 17*");
    }

    [Fact]
    public void TruncatedHeaderIsAClearError()
    {
        var act = () => IdxReader.Parse(new byte[] { 0, 0, 8, 3, 0, 0, 0, 1, 0, 0 }, "hdr");
        act.Should().Throw<InvalidDataException>().WithMessage("*truncated IDX header*3 dimensions need 16 header bytes*10*");
        var tiny = () => IdxReader.Parse(new byte[] { 0, 0 }, "two");
        tiny.Should().Throw<InvalidDataException>().WithMessage("*truncated IDX header*2 bytes*");
    }

    [Fact]
    public void TruncatedGzipIsAClearError()
    {
        IdxWriter.Write(PathOf("cut.gz"), new IdxArray(IdxDataType.UInt8, new[] { 1000 }, Enumerable.Range(0, 1000).Select(i => (byte)(i * 7919)).ToArray()));
        var bytes = File.ReadAllBytes(PathOf("cut.gz"));
        File.WriteAllBytes(PathOf("cut.gz"), bytes[..(bytes.Length / 2)]);
        var act = () => IdxReader.Read(PathOf("cut.gz"));
        act.Should().Throw<InvalidDataException>().WithMessage("*cut.gz*");
    }

    [Fact]
    public void TrailingBytesAreRejected()
    {
        var full = IdxWriter.ToBytes(new IdxArray(IdxDataType.UInt8, new[] { 2 }, new byte[] { 1, 2 }));
        var act = () => IdxReader.Parse(full.Concat(new byte[] { 9 }).ToArray(), "long");
        act.Should().Throw<InvalidDataException>().WithMessage("*1 unexpected bytes*");
    }

    [Fact]
    public void MissingFileNamesThePath()
    {
        var act = () => IdxReader.Read(PathOf("nope.gz"));
        act.Should().Throw<FileNotFoundException>().WithMessage("*nope.gz*");
    }

    [Fact]
    public void ReadsRawAndGzipAlike()
    {
        var a = new IdxArray(IdxDataType.UInt8, new[] { 3 }, new byte[] { 1, 2, 3 });
        var raw = IdxWriter.ToBytes(a);
        using var ms = new MemoryStream();
        using (var gz = new GZipStream(ms, CompressionLevel.Fastest, leaveOpen: true)) gz.Write(raw);
        IdxReader.Read(new MemoryStream(ms.ToArray())).AsBytes().Should().Equal(1, 2, 3);
        IdxReader.Read(new MemoryStream(raw)).AsBytes().Should().Equal(1, 2, 3);
    }

    [Fact]
    public void ShippedSubsetHasTheDocumentedShape()
    {
        var (train, test) = FashionMnist.Load(FashionMnist.ShippedDirectory);
        train.Count.Should().Be(6000);
        test.Count.Should().Be(1000);
        (train.Rows, train.Columns).Should().Be((28, 28));
        train.Labels.Distinct().Should().HaveCount(10);
        test.Labels.Should().OnlyContain(l => l < 10);
    }

    [Fact]
    public void FashionLoaderChecksLabelsAgainstImages()
    {
        var images = new IdxArray(IdxDataType.UInt8, new[] { 2, 2, 2 }, new byte[8]);
        var labels = new IdxArray(IdxDataType.UInt8, new[] { 3 }, new byte[] { 1, 2, 3 });
        var act = () => FashionMnist.FromIdx(images, labels, "pair");
        act.Should().Throw<InvalidDataException>().WithMessage("*2 images but 3 labels*");
        var badLabel = () => FashionMnist.FromIdx(images, new IdxArray(IdxDataType.UInt8, new[] { 2 }, new byte[] { 1, 12 }), "pair");
        badLabel.Should().Throw<InvalidDataException>().WithMessage("*label 12 at index 1*");
    }

    [Fact]
    public void MakeSubsetCutsThePrefix()
    {
        var src = PathOf("src");
        var images = Enumerable.Range(0, 5 * 4).Select(i => (byte)i).ToArray();
        FashionMnist.WriteSplit(src, "train", new LabelledImages(images, new byte[] { 0, 1, 2, 3, 4 }, 5, 2, 2));
        FashionMnist.WriteSplit(src, "t10k", new LabelledImages(images[..8], new byte[] { 9, 8 }, 2, 2, 2));
        var (a, b) = FashionMnist.MakeSubset(src, PathOf("dst"), train: 3, test: 1);
        var (ra, rb) = FashionMnist.Load(PathOf("dst"));
        ra.Labels.Should().Equal(0, 1, 2);
        ra.Pixels.Should().Equal(images[..12]);
        rb.Labels.Should().Equal(9);
        (a.Count, b.Count).Should().Be((3, 1));
    }
}
