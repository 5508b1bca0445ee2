using System.Reflection;

namespace AdaGraft.Tests.Support;

/// <summary>
/// Marks a <c>public static int Name(string[] args)</c> method of this test assembly as a child scenario that
/// <see cref="ChildProcess"/> can run in a separate process by <paramref name="name"/>. The return value is the
/// process's exit code; an exception that escapes it exits with <see cref="ChildScenarios.ExceptionExitCode"/>.
/// </summary>
[AttributeUsage(AttributeTargets.Method, AllowMultiple = false)]
public sealed class ChildScenarioAttribute(string name) : Attribute
{
    /// <summary>The name given after <c>--child</c>.</summary>
    public string Name { get; } = name;
}

/// <summary>The registry of child scenarios: every method of this assembly marked with <see cref="ChildScenarioAttribute"/>.</summary>
public static class ChildScenarios
{
    /// <summary>The exit code of a scenario that threw (the exception is written to stderr first).</summary>
    public const int ExceptionExitCode = 70;

    /// <summary>The exit code when no scenario has the name asked for.</summary>
    public const int UnknownScenarioExitCode = 64;

    private static readonly Lazy<Dictionary<string, Func<string[], int>>> Registry = new(Discover);

    /// <summary>The names of all scenarios.</summary>
    public static IReadOnlyCollection<string> Names => Registry.Value.Keys;

    /// <summary>Runs the scenario named by <c>args[0]</c> with the remaining arguments; returns the exit code.</summary>
    public static int Run(ReadOnlySpan<string> args)
    {
        if (args.Length == 0 || !Registry.Value.TryGetValue(args[0], out var scenario)) {
            Console.Error.WriteLine($"Unknown child scenario '{(args.Length == 0 ? "" : args[0])}'; known: {string.Join(", ", Names.Order(StringComparer.Ordinal))}.");
            return UnknownScenarioExitCode;
        }
        try {
            return scenario(args[1..].ToArray());
        } catch (Exception e) {
            Console.Error.WriteLine("UNHANDLED " + e);
            return ExceptionExitCode;
        }
    }

    private static Dictionary<string, Func<string[], int>> Discover()
    {
        var found = new Dictionary<string, Func<string[], int>>(StringComparer.Ordinal);
        var methods = typeof(ChildScenarios).Assembly.GetTypes()
            .SelectMany(t => t.GetMethods(BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Static | BindingFlags.DeclaredOnly));
        foreach (var method in methods) {
            var mark = method.GetCustomAttribute<ChildScenarioAttribute>();
            if (mark is null) continue;
            if (method.ReturnType != typeof(int) || method.GetParameters() is not [{ ParameterType: var p }] || p != typeof(string[]))
                throw new InvalidOperationException($"Child scenario {method.DeclaringType}.{method.Name} must be static int (string[] args).");
            if (!found.TryAdd(mark.Name, method.CreateDelegate<Func<string[], int>>()))
                throw new InvalidOperationException($"Two child scenarios are named '{mark.Name}'.");
        }
        return found;
    }
}
