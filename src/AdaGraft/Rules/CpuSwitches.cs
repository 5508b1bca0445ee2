namespace AdaGraft.Rules;

/// <summary>
/// Process-wide switches for the fused CPU kernels, each settable as an environment variable or an
/// <see cref="AppContext"/> switch (for example <c>&lt;RuntimeHostConfigurationOption&gt;</c> in the project file, or
/// <see cref="AppContext.SetSwitch"/> before the first optimizer step).
/// </summary>
/// <remarks>
/// <list type="table">
/// <listheader><term>switch</term><description>effect</description></listheader>
/// <item><term><c>AdaGraft.Cpu.DisableFusedKernels</c> / <c>ADAGRAFT_FUSED_CPU=0</c></term>
/// <description>No fused CPU kernel runs: every optimizer and graft takes its eager path, whatever its own
/// <c>FusedCpuKernel</c> option says (see <see cref="FusedKernels"/>).</description></item>
/// <item><term><c>AdaGraft.Cpu.DisableOpenMpRunner</c> / <c>ADAGRAFT_CPU_PARALLEL=dotnet</c></term>
/// <description>The fused kernels' parallel loops run on the .NET thread pool (<c>Parallel.For</c>) instead of
/// libtorch's OpenMP thread team (see <see cref="OpenMpRunner"/>).</description></item>
/// </list>
/// <para>Each switch is read once, the first time the fused kernels look at it (in practice the first optimizer step
/// on CPU); later changes to the environment or the AppContext switch have no effect. An AppContext switch that is
/// set (to true or to false) takes precedence over the environment variable, so an application can pin its
/// behaviour whatever its environment says; when it is not set, the environment variable decides. Environment
/// values are matched case-insensitively; any other value (or none) leaves the default, which is on.</para>
/// </remarks>
public static class CpuSwitches
{
    /// <summary>The AppContext switch that, set to true, turns the fused CPU kernels off.</summary>
    public const string DisableFusedKernelsSwitch = "AdaGraft.Cpu.DisableFusedKernels";

    /// <summary>The environment variable that, set to <c>0</c> (or <c>false</c>, <c>off</c>), turns the fused CPU kernels off.</summary>
    public const string FusedKernelsVariable = "ADAGRAFT_FUSED_CPU";

    /// <summary>The AppContext switch that, set to true, runs the fused kernels' loops on the .NET thread pool.</summary>
    public const string DisableOpenMpRunnerSwitch = "AdaGraft.Cpu.DisableOpenMpRunner";

    /// <summary>The environment variable that, set to <c>dotnet</c>, runs the fused kernels' loops on the .NET thread pool.</summary>
    public const string CpuParallelVariable = "ADAGRAFT_CPU_PARALLEL";

    // An explicit static constructor: the switches are read at the first use of this class, not earlier.
    static CpuSwitches()
    {
        FusedKernels = !Disabled(Switch(DisableFusedKernelsSwitch), Environment.GetEnvironmentVariable(FusedKernelsVariable), "0", "false", "off");
        OpenMpRunner = !Disabled(Switch(DisableOpenMpRunnerSwitch), Environment.GetEnvironmentVariable(CpuParallelVariable), "dotnet");
    }

    /// <summary>
    /// True (default) when the fused CPU kernels may run; false when <c>AdaGraft.Cpu.DisableFusedKernels</c> or
    /// <c>ADAGRAFT_FUSED_CPU=0</c> turned them off for the process. The per-instance <c>FusedCpuKernel</c> options
    /// (<see cref="Optimizers.GenericSecondMomentOptimizer.FusedCpuKernel"/>,
    /// <see cref="Grafting.GraftOptions.FusedCpuKernel"/>) can only turn them off further.
    /// </summary>
    public static bool FusedKernels { get; internal set; }

    /// <summary>
    /// True (default) when the fused kernels' parallel loops may run on libtorch's own OpenMP thread team (Linux, when
    /// the libgomp libtorch's CPU library links against is identified exactly); false when
    /// <c>AdaGraft.Cpu.DisableOpenMpRunner</c> or <c>ADAGRAFT_CPU_PARALLEL=dotnet</c> chose the .NET thread pool.
    /// Both give the same bits.
    /// </summary>
    public static bool OpenMpRunner { get; internal set; }

    /// <summary>Whether a decision site with its own fused option <paramref name="option"/> takes the fused path.</summary>
    internal static bool Fused(bool option) => option && FusedKernels;

    /// <summary>
    /// The precedence rule: a set AppContext switch decides; otherwise the environment variable is "off" when it
    /// equals one of <paramref name="offValues"/> (case-insensitive).
    /// </summary>
    internal static bool Disabled(bool? appContextSwitch, string? environmentValue, params string[] offValues)
    {
        if (appContextSwitch is bool set) return set;
        if (environmentValue is null) return false;
        var value = environmentValue.Trim();
        foreach (var off in offValues) {
            if (string.Equals(value, off, StringComparison.OrdinalIgnoreCase)) return true;
        }
        return false;
    }

    private static bool? Switch(string name) => AppContext.TryGetSwitch(name, out bool value) ? value : null;
}
