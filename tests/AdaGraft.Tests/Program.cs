namespace AdaGraft.Tests;

/// <summary>
/// The test executable's entry point (xunit's generated one is turned off in the project file). With
/// <c>--child &lt;scenario&gt; args…</c> it runs one <see cref="ChildScenarioAttribute">child scenario</see> and exits, so
/// that tests can run code in a process they may kill or that may crash (see <see cref="ChildProcess"/>); with any
/// other arguments it does what xunit's generated entry point does: the Microsoft Testing Platform when asked for
/// it, xunit's in-process console runner (which <c>dotnet test</c> and the VSTest adapter drive) otherwise.
/// </summary>
internal static class Program
{
    public static int Main(string[] args)
    {
        if (args.Length > 0 && args[0] == ChildProcess.Flag) return ChildScenarios.Run(args.AsSpan(1));
        if (Array.Exists(args, arg => arg is "--server" or "--internal-msbuild-node"))
            return Xunit.MicrosoftTestingPlatform.TestPlatformTestFramework.RunAsync(args, SelfRegisteredExtensions.AddSelfRegisteredExtensions).GetAwaiter().GetResult();
        return Xunit.Runner.InProc.SystemConsole.ConsoleRunner.Run(args).GetAwaiter().GetResult();
    }
}
