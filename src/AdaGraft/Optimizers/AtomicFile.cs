using System;
using System.IO;

namespace AdaGraft.Optimizers;

/// <summary>Writes a file through a temporary sibling and a rename, so a crash never leaves a half-written file.</summary>
internal static class AtomicFile
{
    public static void Write(string location, Action<BinaryWriter> write)
    {
        ArgumentException.ThrowIfNullOrEmpty(location);
        string full = Path.GetFullPath(location);
        string tmp = full + ".tmp-" + Environment.ProcessId + "-" + Guid.NewGuid().ToString("N")[..8];
        try {
            using (var stream = new FileStream(tmp, FileMode.CreateNew, FileAccess.Write))
            using (var writer = new BinaryWriter(stream)) {
                write(writer);
                writer.Flush();
                stream.Flush(flushToDisk: true);
            }
            File.Move(tmp, full, overwrite: true);
        } catch {
            try { File.Delete(tmp); } catch (IOException) { }
            throw;
        }
    }
}
