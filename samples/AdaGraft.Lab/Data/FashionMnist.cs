using System;
using System.IO;
using System.Linq;

namespace AdaGraft.Lab.Data;

/// <summary>Images (N × rows × cols, unsigned bytes) with their labels (N, 0–9).</summary>
public sealed record LabelledImages(byte[] Pixels, byte[] Labels, int Count, int Rows, int Columns)
{
    /// <summary>Pixels per image.</summary>
    public int ImageSize => Rows * Columns;

    /// <summary>The first <paramref name="n"/> examples (all if there are fewer).</summary>
    public LabelledImages Take(int n)
    {
        if (n < 0) throw new ArgumentOutOfRangeException(nameof(n), n, "Cannot take a negative number of examples.");
        if (n >= Count) return this;
        return new LabelledImages(Pixels.AsSpan(0, n * ImageSize).ToArray(), Labels.AsSpan(0, n).ToArray(), n, Rows, Columns);
    }
}

/// <summary>
/// Fashion-MNIST (or MNIST) in its original IDX files: <c>train-images-idx3-ubyte</c>, <c>train-labels-idx1-ubyte</c>,
/// <c>t10k-images-idx3-ubyte</c>, <c>t10k-labels-idx1-ubyte</c>, each gzip-compressed (<c>.gz</c>) or raw.
/// </summary>
public static class FashionMnist
{
    /// <summary>The class names, by label.</summary>
    public static readonly string[] ClassNames = {
        "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
    };

    /// <summary>The data folder shipped with the lab (copied next to the program at build time).</summary>
    public static string ShippedDirectory => Path.Combine(AppContext.BaseDirectory, "data", "fashion-mnist");

    /// <summary>Loads the training and test splits from <paramref name="directory"/>.</summary>
    public static (LabelledImages Train, LabelledImages Test) Load(string directory)
    {
        ArgumentNullException.ThrowIfNull(directory);
        if (!Directory.Exists(directory))
            throw new DirectoryNotFoundException($"Fashion-MNIST folder not found: {directory}. Give a folder with train-images-idx3-ubyte(.gz), train-labels-idx1-ubyte(.gz), t10k-images-idx3-ubyte(.gz) and t10k-labels-idx1-ubyte(.gz) (e.g. /usr/share/datasets/fashion-mnist from Debian's dataset-fashion-mnist package).");
        return (LoadSplit(directory, "train"), LoadSplit(directory, "t10k"));
    }

    /// <summary>Loads one split ("train" or "t10k").</summary>
    public static LabelledImages LoadSplit(string directory, string prefix)
    {
        var images = IdxReader.Read(Find(directory, $"{prefix}-images-idx3-ubyte"));
        var labels = IdxReader.Read(Find(directory, $"{prefix}-labels-idx1-ubyte"));
        return FromIdx(images, labels, $"{directory}/{prefix}");
    }

    /// <summary>Checks and pairs an image array [N, rows, cols] and a label array [N] (both unsigned bytes).</summary>
    public static LabelledImages FromIdx(IdxArray images, IdxArray labels, string what)
    {
        ArgumentNullException.ThrowIfNull(images);
        ArgumentNullException.ThrowIfNull(labels);
        if (images.Dimensions.Length != 3)
            throw new InvalidDataException($"{what}: images must have 3 dimensions [N, rows, cols], found [{string.Join(", ", images.Dimensions)}].");
        if (labels.Dimensions.Length != 1)
            throw new InvalidDataException($"{what}: labels must have 1 dimension [N], found [{string.Join(", ", labels.Dimensions)}].");
        if (images.Dimensions[0] != labels.Dimensions[0])
            throw new InvalidDataException($"{what}: {images.Dimensions[0]} images but {labels.Dimensions[0]} labels.");
        var pixels = images.AsBytes();
        var y = labels.AsBytes();
        int bad = Array.FindIndex(y, l => l >= ClassNames.Length);
        if (bad >= 0)
            throw new InvalidDataException($"{what}: label {y[bad]} at index {bad} is outside 0–{ClassNames.Length - 1}.");
        return new LabelledImages(pixels, y, images.Dimensions[0], images.Dimensions[1], images.Dimensions[2]);
    }

    /// <summary>Writes <paramref name="data"/> as the two gzip IDX files of split <paramref name="prefix"/>.</summary>
    public static void WriteSplit(string directory, string prefix, LabelledImages data)
    {
        ArgumentNullException.ThrowIfNull(data);
        IdxWriter.Write(Path.Combine(directory, $"{prefix}-images-idx3-ubyte.gz"),
            new IdxArray(IdxDataType.UInt8, new[] { data.Count, data.Rows, data.Columns }, data.Pixels));
        IdxWriter.Write(Path.Combine(directory, $"{prefix}-labels-idx1-ubyte.gz"),
            new IdxArray(IdxDataType.UInt8, new[] { data.Count }, data.Labels));
    }

    /// <summary>Cuts the first <paramref name="train"/> training and <paramref name="test"/> test examples of the
    /// data set in <paramref name="from"/> into new gzip IDX files in <paramref name="to"/>.</summary>
    public static (LabelledImages Train, LabelledImages Test) MakeSubset(string from, string to, int train, int test)
    {
        var (tr, te) = Load(from);
        var a = tr.Take(train);
        var b = te.Take(test);
        Directory.CreateDirectory(to);
        WriteSplit(to, "train", a);
        WriteSplit(to, "t10k", b);
        return (a, b);
    }

    private static string Find(string directory, string stem)
    {
        foreach (var name in new[] { stem + ".gz", stem, stem.Replace("-idx", ".idx", StringComparison.Ordinal) }) {
            var p = Path.Combine(directory, name);
            if (File.Exists(p)) return p;
        }
        var present = Directory.Exists(directory) ? string.Join(", ", Directory.GetFiles(directory).Select(Path.GetFileName)) : "(folder missing)";
        throw new FileNotFoundException($"{directory}: neither {stem}.gz nor {stem} exists (present: {present}).", Path.Combine(directory, stem + ".gz"));
    }
}
