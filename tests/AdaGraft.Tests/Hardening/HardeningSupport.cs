using System.Globalization;

namespace AdaGraft.Tests.Hardening;

/// <summary>Helpers shared by the hardening tests: process memory, live tensors, state bytes, exact snapshots.</summary>
internal static class HardeningSupport
{
    /// <summary>
    /// The process's resident set size in bytes after a full, finalizing garbage collection (so that tensors only
    /// awaiting finalization are freed first) that also returns the managed heap's free space to the OS (so that
    /// the reading does not depend on when the GC last decommitted): VmRSS of /proc/self/status on Linux, the
    /// working set elsewhere.
    /// </summary>
    public static long ResidentBytes()
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect(GC.MaxGeneration, GCCollectionMode.Aggressive, blocking: true, compacting: true);
        const string status = "/proc/self/status";
        if (File.Exists(status)) {
            foreach (var line in File.ReadLines(status)) {
                if (!line.StartsWith("VmRSS:", StringComparison.Ordinal)) continue;
                var kb = line["VmRSS:".Length..].Trim().Split(' ', StringSplitOptions.RemoveEmptyEntries)[0];
                return long.Parse(kb, CultureInfo.InvariantCulture) * 1024;
            }
        }
        return Environment.WorkingSet;
    }

    /// <summary>Tensors created on this thread and not yet disposed (TorchSharp's dispose-scope statistics).</summary>
    public static long LiveTensorsOnThisThread => DisposeScopeManager.Statistics.TensorStatistics.ThreadTotalLiveCount;

    /// <summary>A graft's complete saved state as bytes.</summary>
    public static byte[] SaveToBytes(GraftOptimizer graft) => StateBytes.Save(graft.save_state_dict);

    /// <summary>Loads bytes written by <see cref="SaveToBytes(GraftOptimizer)"/>.</summary>
    public static void LoadFromBytes(GraftOptimizer graft, byte[] bytes) => StateBytes.Load(bytes, graft.load_state_dict);

    /// <summary>An optimizer's complete saved state as bytes.</summary>
    public static byte[] SaveToBytes(GenericSecondMomentOptimizer opt) => Support.TestTensors.SaveState(opt);

    /// <summary>Every parameter's raw bytes (exact, whatever the dtype).</summary>
    public static byte[][] RawBytes(IEnumerable<Tensor> ps) =>
        ps.Select(p => {
            using var detached = p.detach();
            return Bytes(detached);
        }).ToArray();

    private static byte[] Bytes(Tensor t)
    {
        using var cpu = t.cpu();
        using var contiguous = cpu.contiguous();
        return contiguous.bytes.ToArray();
    }

    /// <summary>Every parameter's gradient's raw bytes (empty for a missing gradient).</summary>
    public static byte[][] GradientBytes(IEnumerable<Parameter> ps) =>
        ps.Select(p => {
            using var g = p.grad;
            return g is null ? Array.Empty<byte>() : Bytes(g);
        }).ToArray();

    /// <summary>Asserts two raw snapshots are identical, naming the first tensor that differs.</summary>
    public static void ShouldEqualBytes(byte[][] actual, byte[][] expected, string because)
    {
        actual.Length.Should().Be(expected.Length, because);
        for (int i = 0; i < actual.Length; i++) actual[i].Should().Equal(expected[i], $"tensor {i}: {because}");
    }

    /// <summary>True when every element of every tensor is finite.</summary>
    public static bool AllFinite(IEnumerable<Tensor> ts) => ts.All(Support.TestTensors.AllFinite);

    /// <summary>Sets each parameter's gradient to <c>p − target</c>, the gradient of ½‖p − target‖².</summary>
    public static void SetQuadraticGradients(IReadOnlyList<Parameter> ps, IReadOnlyList<Tensor> targets)
    {
        for (int i = 0; i < ps.Count; i++) {
            var p = ps[i];
            p.grad = p.detach() - targets[i];
        }
    }
}
