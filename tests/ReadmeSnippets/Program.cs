using System.Reflection;

// Runs every documentation block of statements (each compiled by extract.sh into ReadmeSnippets.<file>_<n>.Snippet.Run)
// in a scratch folder, so that the files they write (checkpoints, CSV, figures) go nowhere else. Blocks that only
// declare types are compiled, not run. Exit code 1 if any block throws.
string scratch = Path.Combine(Path.GetTempPath(), $"adagraft-snippets-{Environment.ProcessId}");
Directory.CreateDirectory(scratch);
Directory.SetCurrentDirectory(scratch);
var snippets = typeof(Program).Assembly.GetTypes()
    .Where(t => t.Name == "Snippet" && t.Namespace?.StartsWith("ReadmeSnippets.", StringComparison.Ordinal) == true)
    .OrderBy(t => t.Namespace, StringComparer.Ordinal)
    .ToList();
int failed = 0;
foreach (var type in snippets) {
    var run = type.GetMethod("Run", BindingFlags.Static | BindingFlags.NonPublic)!;
    var watch = System.Diagnostics.Stopwatch.StartNew();
    try {
        run.Invoke(null, null);
        Console.WriteLine($"ran   {type.Namespace} ({watch.Elapsed.TotalSeconds:F1} s)");
    } catch (TargetInvocationException e) {
        failed++;
        Console.Error.WriteLine($"FAILED {type.Namespace}: {e.InnerException}");
    }
}
Directory.SetCurrentDirectory(Path.GetTempPath());
Directory.Delete(scratch, recursive: true);
if (snippets.Count == 0) {
    Console.Error.WriteLine("no documentation snippets were compiled in");
    return 1;
}
Console.WriteLine($"documentation snippets: {snippets.Count} run, {failed} failed");
return failed == 0 ? 0 : 1;

