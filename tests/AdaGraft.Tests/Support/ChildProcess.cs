using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text;

namespace AdaGraft.Tests.Support;

/// <summary>What a finished child process left: its exit code and everything it wrote.</summary>
/// <param name="ExitCode">
/// The exit code. A scenario that returns normally exits with its return value; one that throws exits with
/// <see cref="ChildScenarios.ExceptionExitCode"/> after writing the exception to stderr. On Linux and macOS a child
/// ended by a signal reads 128 + the signal number (<see cref="Signal"/>).
/// </param>
/// <param name="Output">Everything written to stdout, lines joined with '\n'.</param>
/// <param name="Error">Everything written to stderr, lines joined with '\n'.</param>
/// <param name="TimedOut">Whether the child was still running at the timeout and was killed.</param>
public sealed record ChildResult(int ExitCode, string Output, string Error, bool TimedOut)
{
    /// <summary>The signal that ended the child (9 = SIGKILL, 6 = SIGABRT, 11 = SIGSEGV…), or null if it exited by itself or on Windows.</summary>
    public int? Signal => !OperatingSystem.IsWindows() && ExitCode is > 128 and < 128 + 65 ? ExitCode - 128 : null;

    /// <summary>Exit code, stdout and stderr, for assertion messages.</summary>
    public override string ToString() => $"exit code {ExitCode}{(TimedOut ? " (timed out)" : "")}\n--- stdout\n{Output}\n--- stderr\n{Error}";
}

/// <summary>
/// Runs a <see cref="ChildScenarioAttribute">child scenario</see> of this test assembly in a new process (this same
/// test executable, started with <c>--child &lt;scenario&gt; args…</c>): for code that must be killed mid-way or that
/// might crash the process. Stdout and stderr are captured line by line.
/// </summary>
/// <example>
/// <code>
/// var result = ChildProcess.Run("misuse-after-dispose", TimeSpan.FromSeconds(30));
/// result.Signal.Should().BeNull(result.ToString());
///
/// using var child = ChildProcess.Start("checkpoint-save-loop", file, "4000000");
/// child.ReadLine(TimeSpan.FromSeconds(60));   // wait until it is under way
/// child.Kill();                               // SIGKILL on Linux and macOS
/// </code>
/// </example>
public sealed class ChildProcess : IDisposable
{
    /// <summary>The first argument that makes the test executable run a child scenario instead of the tests.</summary>
    public const string Flag = "--child";

    private readonly Process _process;
    private readonly BlockingCollection<string> _lines = new();
    private readonly StringBuilder _output = new();
    private readonly StringBuilder _error = new();
    private bool _timedOut;

    private ChildProcess(Process process) => _process = process;

    /// <summary>The child's process id.</summary>
    public int Id => _process.Id;

    /// <summary>Starts scenario <paramref name="scenario"/> with <paramref name="args"/> in a new process.</summary>
    public static ChildProcess Start(string scenario, params string[] args)
    {
        ArgumentException.ThrowIfNullOrEmpty(scenario);
        var info = new ProcessStartInfo {
            UseShellExecute = false,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            StandardOutputEncoding = Encoding.UTF8,
            StandardErrorEncoding = Encoding.UTF8,
        };
        var (host, hostArgs) = Executable();
        info.FileName = host;
        foreach (var a in hostArgs) info.ArgumentList.Add(a);
        info.ArgumentList.Add(Flag);
        info.ArgumentList.Add(scenario);
        foreach (var a in args) info.ArgumentList.Add(a);

        var process = new Process { StartInfo = info };
        var child = new ChildProcess(process);
        process.OutputDataReceived += (_, e) => Received(e.Data, child._output, child._lines);
        process.ErrorDataReceived += (_, e) => Received(e.Data, child._error, null);
        if (!process.Start()) throw new InvalidOperationException($"Could not start {host}.");
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        process.StandardInput.Close();
        return child;
    }

    /// <summary>Runs <paramref name="scenario"/> to the end (killing it after <paramref name="timeout"/>) and returns what it left.</summary>
    public static ChildResult Run(string scenario, TimeSpan timeout, params string[] args)
    {
        using var child = Start(scenario, args);
        return child.WaitForExit(timeout);
    }

    /// <summary>
    /// The next line the child writes to stdout, or null if it exits first. Throws <see cref="TimeoutException"/>
    /// (with everything captured so far) if no line comes within <paramref name="timeout"/>.
    /// </summary>
    public string? ReadLine(TimeSpan timeout)
    {
        try {
            if (_lines.TryTake(out var line, timeout)) return line;
        } catch (InvalidOperationException) {
            return null;                               // completed and empty: stdout closed
        }
        if (_lines.IsCompleted) return null;
        throw new TimeoutException($"The child wrote no line within {timeout}.\n{Captured()}");
    }

    /// <summary>Kills the child and its descendants (SIGKILL on Linux and macOS) and waits until it is gone.</summary>
    public void Kill()
    {
        try {
            _process.Kill(entireProcessTree: true);
        } catch (InvalidOperationException) {
            // It had already exited.
        }
        _process.WaitForExit();
    }

    /// <summary>Waits for the child to exit, killing it if it still runs after <paramref name="timeout"/>.</summary>
    public ChildResult WaitForExit(TimeSpan timeout)
    {
        if (!_process.WaitForExit(timeout)) {
            _timedOut = true;
            Kill();
        }
        _process.WaitForExit();                         // drains the redirected output
        lock (_output) lock (_error) return new ChildResult(_process.ExitCode, _output.ToString(), _error.ToString(), _timedOut);
    }

    /// <summary>Kills the child if it still runs.</summary>
    public void Dispose()
    {
        try {
            if (!_process.HasExited) _process.Kill(entireProcessTree: true);
            _process.WaitForExit();                     // no output event may come after this
        } catch (InvalidOperationException) {
            // Never started, or already gone.
        }
        _process.Dispose();
        _lines.Dispose();
    }

    private static void Received(string? data, StringBuilder all, BlockingCollection<string>? lines)
    {
        if (data is null) {
            lines?.CompleteAdding();
            return;
        }
        lock (all) {
            if (all.Length > 0) all.Append('\n');
            all.Append(data);
        }
        lines?.Add(data);
    }

    private string Captured()
    {
        lock (_output) lock (_error) return $"--- stdout\n{_output}\n--- stderr\n{_error}";
    }

    /// <summary>
    /// The command that starts this test executable: the running executable when it is this test assembly's app
    /// host, otherwise the app host beside the assembly, otherwise the <c>dotnet</c> host with the assembly.
    /// </summary>
    private static (string Host, string[] Args) Executable()
    {
        string assembly = typeof(ChildProcess).Assembly.Location;
        string name = Path.GetFileNameWithoutExtension(assembly);
        string? running = Environment.ProcessPath;
        if (running is not null && string.Equals(Path.GetFileNameWithoutExtension(running), name, StringComparison.OrdinalIgnoreCase))
            return (running, Array.Empty<string>());
        string appHost = Path.Combine(Path.GetDirectoryName(assembly)!, OperatingSystem.IsWindows() ? name + ".exe" : name);
        if (File.Exists(appHost)) return (appHost, Array.Empty<string>());
        string dotnet = running is not null && Path.GetFileNameWithoutExtension(running) == "dotnet"
            ? running
            : Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? "dotnet";
        return (dotnet, new[] { "exec", assembly });
    }
}
