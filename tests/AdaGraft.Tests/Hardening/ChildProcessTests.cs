using System.Globalization;
using System.Threading;

namespace AdaGraft.Tests.Hardening;

/// <summary>The child-process helper: scenarios run in another process, with exit code and output captured.</summary>
public sealed class ChildProcessTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(60);

    /// <summary>Child: writes each argument but the first to stdout, "to stderr" to stderr, and exits with the first.</summary>
    [ChildScenario("child-process-echo")]
    public static int Echo(string[] args)
    {
        foreach (var a in args[1..]) Console.WriteLine(a);
        Console.Error.WriteLine("to stderr");
        return int.Parse(args[0], CultureInfo.InvariantCulture);
    }

    /// <summary>Child: throws.</summary>
    [ChildScenario("child-process-throw")]
    public static int Throw(string[] args) => throw new InvalidOperationException("thrown in the child: " + string.Join(' ', args));

    /// <summary>Child: writes "waiting" and sleeps args[0] ms.</summary>
    [ChildScenario("child-process-wait")]
    public static int Wait(string[] args)
    {
        Console.WriteLine("waiting");
        Thread.Sleep(int.Parse(args[0], CultureInfo.InvariantCulture));
        return 0;
    }

    [Fact]
    public void AChildRunsTheScenarioWithItsArgumentsAndReportsExitCodeAndOutput()
    {
        var result = ChildProcess.Run("child-process-echo", Timeout, "3", "one", "two words", "\"quoted\"");

        result.ExitCode.Should().Be(3, result.ToString());
        result.Output.Should().Be("one\ntwo words\n\"quoted\"");
        result.Error.Should().Be("to stderr");
        result.TimedOut.Should().BeFalse();
        result.Signal.Should().BeNull();
    }

    [Fact]
    public void AnExceptionInTheChildIsAnExitCodeWithTheExceptionOnStderrAndAnUnknownScenarioIsAnother()
    {
        var thrown = ChildProcess.Run("child-process-throw", Timeout, "a", "b");
        thrown.ExitCode.Should().Be(ChildScenarios.ExceptionExitCode, thrown.ToString());
        thrown.Error.Should().Contain("System.InvalidOperationException: thrown in the child: a b");
        thrown.Signal.Should().BeNull();

        var unknown = ChildProcess.Run("no-such-scenario", Timeout);
        unknown.ExitCode.Should().Be(ChildScenarios.UnknownScenarioExitCode, unknown.ToString());
        unknown.Error.Should().Contain("child-process-echo");
    }

    [Fact]
    public void AKilledChildReportsTheSignalAndOneStillRunningAtTheTimeoutIsKilled()
    {
        using (var child = ChildProcess.Start("child-process-wait", "60000")) {
            child.ReadLine(Timeout).Should().Be("waiting");
            child.Kill();
            var killed = child.WaitForExit(Timeout);
            killed.TimedOut.Should().BeFalse();
            if (!OperatingSystem.IsWindows()) killed.Signal.Should().Be(9, killed.ToString());
            child.ReadLine(Timeout).Should().BeNull("stdout is closed");
        }

        using (var child = ChildProcess.Start("child-process-wait", "60000")) {
            child.ReadLine(Timeout).Should().Be("waiting");
            var late = child.WaitForExit(TimeSpan.Zero);
            late.TimedOut.Should().BeTrue();
            late.Output.Should().Be("waiting");
        }
    }
}
