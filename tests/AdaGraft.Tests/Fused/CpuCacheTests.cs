using AdaGraft.Rules;

namespace AdaGraft.Tests.Fused;

/// <summary>Reading one core's L2 share from a Linux-style cache folder (a fake one here), and the fallbacks.</summary>
public sealed class CpuCacheTests : IDisposable
{
    private readonly string _root = Path.Combine(Path.GetTempPath(), "adagraft-cache-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        if (Directory.Exists(_root)) Directory.Delete(_root, recursive: true);
    }

    private void Index(int i, string level, string type, string size, string shared)
    {
        var dir = Path.Combine(_root, $"index{i}");
        Directory.CreateDirectory(dir);
        File.WriteAllText(Path.Combine(dir, "level"), level + "\n");
        File.WriteAllText(Path.Combine(dir, "type"), type + "\n");
        File.WriteAllText(Path.Combine(dir, "size"), size + "\n");
        File.WriteAllText(Path.Combine(dir, "shared_cpu_list"), shared + "\n");
    }

    [Fact]
    public void ReadsTheLevel2CacheOfOneCore()
    {
        Index(0, "1", "Data", "48K", "0");
        Index(1, "1", "Instruction", "32K", "0");
        Index(2, "2", "Unified", "2048K", "0");
        Index(3, "3", "Unified", "307200K", "0-15");
        CpuCache.ReadL2PerCore(_root).Should().Be(2 << 20);
    }

    [Fact]
    public void DividesAnL2SharedByACluster()
    {
        Index(0, "2", "Unified", "4M", "0-3");
        CpuCache.ReadL2PerCore(_root).Should().Be(1 << 20);
    }

    [Fact]
    public void MissingOrMalformedGivesNull()
    {
        CpuCache.ReadL2PerCore(_root).Should().BeNull("the folder does not exist");
        Index(0, "1", "Data", "48K", "0");
        CpuCache.ReadL2PerCore(_root).Should().BeNull("there is no level 2");
        Index(1, "2", "Unified", "lots", "0");
        CpuCache.ReadL2PerCore(_root).Should().BeNull("the size is not a size");
    }

    [Theory]
    [InlineData("2048K", 2L << 20)]
    [InlineData("1M", 1L << 20)]
    [InlineData("512", 512L)]
    [InlineData("", null)]
    [InlineData("K", null)]
    [InlineData("-1K", null)]
    public void ParsesSizes(string text, long? bytes) => CpuCache.Size(text).Should().Be(bytes);

    [Theory]
    [InlineData("0", 1)]
    [InlineData("0-3", 4)]
    [InlineData("0-3,8,10-11", 7)]
    [InlineData("3-1", 1)]
    [InlineData(null, 1)]
    public void CountsCpuLists(string? list, int count) => CpuCache.CountCpus(list).Should().Be(count);

    [Fact]
    public void ThisMachineHasAPlausibleShare() =>
        CpuCache.L2BytesPerCore.Should().BeInRange(64 << 10, 64L << 20);
}
