using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;

namespace AdaGraft.Optimizers;

/// <summary>
/// Writes a file through a temporary sibling and a rename, so a crash never leaves a half-written target. The
/// temporary is named <c>target.tmp-&lt;pid&gt;-&lt;start&gt;-&lt;random&gt;</c>, where <c>start</c> identifies when the writing
/// process started (<c>j</c> + clock ticks since boot from <c>/proc/&lt;pid&gt;/stat</c> on Linux, <c>t</c> + UTC ticks
/// from <see cref="Process.StartTime"/> elsewhere, <c>u</c> when unknown). A process killed mid-save leaves its
/// temporary behind; every later successful save of the same target removes the temporaries of writers that no
/// longer run (no process with that pid, or one that started at another time: the pid was reused).
/// </summary>
/// <remarks>
/// Writers are recognized by pid, so processes writing the same path from another machine or another pid namespace
/// (a shared network or container volume) look dead to each other: do not save to the same path from two of them at
/// once.
/// </remarks>
internal static partial class AtomicFile
{
    private const string TempMarker = ".tmp-";
    private static readonly Lazy<string> OwnStartToken = new(() => StartToken(Environment.ProcessId) ?? "u");

    public static void Write(string location, Action<BinaryWriter> write)
    {
        ArgumentException.ThrowIfNullOrEmpty(location);
        string full = Path.GetFullPath(location);
        string tmp = TempName(full, Environment.ProcessId, OwnStartToken.Value, Guid.NewGuid().ToString("N")[..8]);
        try {
            using (var stream = new FileStream(tmp, FileMode.CreateNew, FileAccess.Write))
            using (var writer = new BinaryWriter(stream)) {
                write(writer);
                writer.Flush();
                stream.Flush(flushToDisk: true);
            }
            File.Move(tmp, full, overwrite: true);
        } catch {
            try { File.Delete(tmp); } catch (IOException) { } catch (UnauthorizedAccessException) { }
            throw;
        }
        SyncDirectory(Path.GetDirectoryName(full));
        RemoveStaleTemporaries(full);
    }

    /// <summary>The temporary file name a process with <paramref name="pid"/> and start token <paramref name="start"/> writes <paramref name="full"/> through.</summary>
    internal static string TempName(string full, int pid, string start, string random) =>
        full + TempMarker + pid.ToString(CultureInfo.InvariantCulture) + "-" + start + "-" + random;

    /// <summary>The start token of this process, as written into its temporary file names.</summary>
    internal static string CurrentStartToken => OwnStartToken.Value;

    // ---------------------------------------------------------------- removing temporaries of dead writers

    /// <summary>
    /// Deletes the temporaries of <paramref name="full"/> (and only of it) whose writers no longer run. Never throws:
    /// a temporary that cannot be deleted (permissions, another process removed it first) is left alone.
    /// </summary>
    internal static void RemoveStaleTemporaries(string full)
    {
        string? dir = Path.GetDirectoryName(full);
        string name = Path.GetFileName(full);
        if (dir is null || name.Length == 0) return;
        string prefix = name + TempMarker;
        var casing = OperatingSystem.IsWindows() || OperatingSystem.IsMacOS() ? StringComparison.OrdinalIgnoreCase : StringComparison.Ordinal;
        var options = new EnumerationOptions {
            MatchType = MatchType.Simple,
            IgnoreInaccessible = true,
            RecurseSubdirectories = false,
            AttributesToSkip = FileAttributes.Directory,
        };
        try {
            foreach (string path in Directory.EnumerateFiles(dir, prefix + "*", options)) {
                string candidate = Path.GetFileName(path);
                if (!candidate.StartsWith(prefix, casing) || !IsStale(candidate.AsSpan(prefix.Length))) continue;
                try { File.Delete(path); } catch (IOException) { } catch (UnauthorizedAccessException) { }
            }
        } catch (IOException) {
        } catch (UnauthorizedAccessException) {
        }
    }

    /// <summary>
    /// Whether the temporary whose name ends in <paramref name="suffix"/> (what follows <c>.tmp-</c>) was written by a
    /// process that no longer runs. Names of another form are never stale. The form of earlier versions,
    /// <c>&lt;pid&gt;-&lt;8 hex&gt;</c>, and the <c>u</c> token are stale only when no process with that pid runs.
    /// </summary>
    internal static bool IsStale(ReadOnlySpan<char> suffix)
    {
        int dash = suffix.IndexOf('-');
        if (dash <= 0 || !IsDigits(suffix[..dash]) || !int.TryParse(suffix[..dash], NumberStyles.None, CultureInfo.InvariantCulture, out int pid)) return false;
        var rest = suffix[(dash + 1)..];
        int second = rest.IndexOf('-');
        if (second < 0) return IsRandom(rest) && Liveness(pid, out _) == Life.Dead;     // the earlier form
        var token = rest[..second];
        if (!IsRandom(rest[(second + 1)..]) || token.Length < 1 || !IsToken(token)) return false;
        var life = Liveness(pid, out string? running);
        if (life == Life.Dead) return true;
        if (life == Life.Unknown || running is null || token[0] == 'u') return false;
        return token[0] == running[0] && !SameStart(token, running);
    }

    private static bool SameStart(ReadOnlySpan<char> written, string running)
    {
        if (!long.TryParse(written[1..], NumberStyles.None, CultureInfo.InvariantCulture, out long a)) return true;
        long b = long.Parse(running.AsSpan(1), NumberStyles.None, CultureInfo.InvariantCulture);
        // Clock ticks since boot are exact; a start time read as a local date and converted back is allowed a second.
        return running[0] == 'j' ? a == b : Math.Abs(a - b) < TimeSpan.TicksPerSecond;
    }

    private static bool IsDigits(ReadOnlySpan<char> s)
    {
        foreach (char c in s) if (c is < '0' or > '9') return false;
        return true;
    }

    private static bool IsRandom(ReadOnlySpan<char> s)
    {
        if (s.Length != 8) return false;
        foreach (char c in s) if (c is not ((>= '0' and <= '9') or (>= 'a' and <= 'f'))) return false;
        return true;
    }

    private static bool IsToken(ReadOnlySpan<char> s) => s[0] switch {
        'u' => s.Length == 1,
        'j' or 't' => s.Length > 1 && IsDigits(s[1..]),
        _ => false,
    };

    private enum Life { Dead, Alive, Unknown }

    /// <summary>The start token of the process with <paramref name="pid"/>, or null if it does not run or cannot be read.</summary>
    internal static string? StartToken(int pid) => Liveness(pid, out string? token) == Life.Alive ? token : null;

    private static Life Liveness(int pid, out string? startToken)
    {
        startToken = null;
        if (pid <= 0) return Life.Unknown;
        if (OperatingSystem.IsLinux()) return LinuxLiveness(pid, out startToken);
        try {
            using var process = Process.GetProcessById(pid);
            if (process.HasExited) return Life.Dead;
            startToken = "t" + process.StartTime.ToUniversalTime().Ticks.ToString(CultureInfo.InvariantCulture);
            return Life.Alive;
        } catch (ArgumentException) {
            return Life.Dead;                  // no process with that id
        } catch (InvalidOperationException) {
            return Life.Dead;                  // it exited while we looked
        } catch (Exception) {
            return Life.Alive;                 // access denied and the like: it runs, start time unknown
        }
    }

    /// <summary>Linux: <c>/proc/&lt;pid&gt;/stat</c>; field 22 is the start time in clock ticks after boot. Zombies count as dead.</summary>
    private static Life LinuxLiveness(int pid, out string? startToken)
    {
        startToken = null;
        string text;
        try {
            text = File.ReadAllText("/proc/" + pid.ToString(CultureInfo.InvariantCulture) + "/stat");
        } catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException) {
            return File.Exists("/proc/self/stat") ? Life.Dead : Life.Unknown;   // without /proc nothing is known
        } catch (Exception e) when (e is IOException or UnauthorizedAccessException) {
            return Life.Unknown;
        }
        // "pid (comm) state ppid …": comm may hold spaces and parentheses, so fields are counted after the last ')'.
        int close = text.LastIndexOf(')');
        if (close < 0) return Life.Unknown;
        var fields = text[(close + 1)..].Split(' ', StringSplitOptions.RemoveEmptyEntries);
        if (fields.Length < 20) return Life.Unknown;
        if (fields[0] is "Z" or "X" or "x") return Life.Dead;        // field 3: state
        if (fields[19].Length == 0 || !IsDigits(fields[19])) return Life.Unknown;
        startToken = "j" + fields[19];                              // field 22: starttime
        return Life.Alive;
    }

    // ---------------------------------------------------------------- a durable rename

    /// <summary>
    /// Flushes the directory entry of a rename to disk (Linux, macOS: <c>fsync</c> on the directory). Returns whether
    /// the directory was synced; a file system that cannot sync directories, or a directory that cannot be opened,
    /// is skipped. An I/O error reported by the sync raises <see cref="IOException"/>.
    /// </summary>
    internal static bool SyncDirectory(string? directory)
    {
        if (string.IsNullOrEmpty(directory) || !(OperatingSystem.IsLinux() || OperatingSystem.IsMacOS())) return false;
        int flags = OperatingSystem.IsLinux() ? 0x80000 : 0x1000000;   // O_RDONLY | O_CLOEXEC
        int fd;
        try {
            fd = Native.Open(directory, flags);
        } catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException) {
            return false;
        }
        if (fd < 0) return false;
        try {
            while (true) {
                if (Native.FSync(fd) == 0) return true;
                int errno = Marshal.GetLastPInvokeError();
                if (errno == EIntr) continue;
                if (errno is EIo or ENoSpc)
                    throw new IOException($"The checkpoint was renamed into {directory}, but syncing the directory failed (errno {errno}): the rename may not survive a power loss.");
                return false;                                          // EINVAL, ENOTSUP…: not supported here
            }
        } finally {
            _ = Native.Close(fd);
        }
    }

    private const int EIntr = 4, EIo = 5, ENoSpc = 28;

    private static partial class Native
    {
        [LibraryImport("libc", EntryPoint = "open", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
        internal static partial int Open(string path, int flags);

        [LibraryImport("libc", EntryPoint = "fsync", SetLastError = true)]
        internal static partial int FSync(int fd);

        [LibraryImport("libc", EntryPoint = "close")]
        internal static partial int Close(int fd);
    }
}
