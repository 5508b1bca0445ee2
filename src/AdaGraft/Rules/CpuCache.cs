using System.Globalization;

namespace AdaGraft.Rules;

/// <summary>
/// The size of one core's share of the level-2 cache, read once from Linux's <c>/sys/devices/system/cpu/cpu0/cache</c>
/// (a cache shared by several cores is divided among them); 1 MiB where that is not readable (other systems, or a
/// virtual machine that does not expose it). The fused graft uses it to decide whether ΔD, written in a group's first
/// pass and read in its second, can stay in cache in between.
/// </summary>
internal static class CpuCache
{
    /// <summary>Assumed where the cache cannot be read: the 2-core VMs this library is tested on have 1 MiB per core.</summary>
    internal const long DefaultL2BytesPerCore = 1 << 20;

    private static readonly Lazy<long> L2 = new(() => ReadL2PerCore("/sys/devices/system/cpu/cpu0/cache") ?? DefaultL2BytesPerCore);

    /// <summary>One core's share of the level-2 cache in bytes.</summary>
    internal static long L2BytesPerCore => L2.Value;

    /// <summary>The level-2 data or unified cache under <paramref name="root"/> (index*/level, type, size, shared_cpu_list), per core; null when absent or unreadable.</summary>
    internal static long? ReadL2PerCore(string root)
    {
        try {
            if (!Directory.Exists(root)) return null;
            foreach (var dir in Directory.GetDirectories(root, "index*").Order(StringComparer.Ordinal)) {
                if (Read(dir, "level") != "2" || Read(dir, "type") == "Instruction") continue;
                if (Size(Read(dir, "size")) is not long bytes || bytes <= 0) return null;
                int sharing = Math.Max(1, CountCpus(Read(dir, "shared_cpu_list")));
                return bytes / sharing;
            }
            return null;
        } catch (Exception e) when (e is IOException or UnauthorizedAccessException) {
            return null;
        }
    }

    private static string? Read(string dir, string name)
    {
        var path = Path.Combine(dir, name);
        return File.Exists(path) ? File.ReadAllText(path).Trim() : null;
    }

    /// <summary>"2048K", "1M", "512" (bytes) → bytes; null when not of that form.</summary>
    internal static long? Size(string? text)
    {
        if (string.IsNullOrEmpty(text)) return null;
        long unit = char.ToUpperInvariant(text[^1]) switch { 'K' => 1 << 10, 'M' => 1 << 20, 'G' => 1 << 30, _ => 1 };
        var digits = unit == 1 ? text : text[..^1];
        return long.TryParse(digits, NumberStyles.None, CultureInfo.InvariantCulture, out long n) ? n * unit : null;
    }

    /// <summary>The number of CPUs in a list such as "0-3,8,10-11"; 1 when it is missing or malformed.</summary>
    internal static int CountCpus(string? list)
    {
        if (string.IsNullOrWhiteSpace(list)) return 1;
        int count = 0;
        foreach (var part in list.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)) {
            var ends = part.Split('-');
            if (ends.Length == 1 && int.TryParse(ends[0], NumberStyles.None, CultureInfo.InvariantCulture, out _)) count++;
            else if (ends.Length == 2 && int.TryParse(ends[0], NumberStyles.None, CultureInfo.InvariantCulture, out int a)
                && int.TryParse(ends[1], NumberStyles.None, CultureInfo.InvariantCulture, out int b) && b >= a) count += b - a + 1;
            else return 1;
        }
        return Math.Max(1, count);
    }
}
