using System;
using System.Diagnostics;
using System.IO;
using System.Linq;
using System.Text.RegularExpressions;
using System.Threading;
using System.Threading.Tasks;
using FluentAssertions;
using Xunit;

namespace AdaGraft.Lab.Tests;

/// <summary>What the lab prints when its standard output is not a terminal (CI logs, <c>| tee</c>).</summary>
public class RedirectedOutputTests : IClassFixture<QuickLabRun>
{
    private static readonly string[] Cells = { "SGD", "SGD#Adam", "SGD#AdaGrad", "Adam#SGD", "Adam", "Adam#AdaGrad", "AdaGrad#SGD", "AdaGrad#Adam", "AdaGrad" };
    private readonly QuickLabRun _run;

    public RedirectedOutputTests(QuickLabRun run) => _run = run;

    private static int Count(string text, string what) => Regex.Count(text, Regex.Escape(what));

    /// <summary>Checks plain output: no escapes, no over-long lines, each table heading once, one line per finished
    /// run, no progress percentages.</summary>
    private static void ShouldBePlain(string text, string[] tasks, bool d1)
    {
        text.Should().NotContain("\u001b", "redirected output carries no ANSI escapes");
        var lines = text.Split('\n').Select(l => l.TrimEnd('\r')).ToArray();
        lines.Where(l => l.Length > 200).Should().BeEmpty("redirected output has no line over 200 characters");
        lines.Where(l => Regex.IsMatch(l, @"\d+%\s*$")).Should().BeEmpty("no progress percentages are printed");
        lines.Should().Contain(l => l.StartsWith("AdaGraft lab — profile quick, 1 seed(s), schedule", StringComparison.Ordinal) && l.EndsWith("1 thread(s)", StringComparison.Ordinal),
            "the heading line is not wrapped");
        foreach (var task in tasks) {
            var heading = task == "vision" ? "vision: final training loss / test accuracy" : "language: final training loss / held-out loss";
            Count(text, heading).Should().Be(1, $"the {task} table is printed once");
            Count(text, $"{task}: 3×3 grafting table: done, 9 run(s) in ").Should().Be(1);
            foreach (var cell in Cells)
                lines.Count(l => l.StartsWith($"  {task}: {cell} (seed 0): ", StringComparison.Ordinal) && l.EndsWith(" s", StringComparison.Ordinal))
                    .Should().Be(1, $"one line when {task} {cell} finishes");
        }
        if (d1) Count(text, "Appendix D.1: test error").Should().Be(1, "the D.1 table is printed once");
    }

    [Fact]
    public void InProcessRunWithThePlainConsolePrintsPlainLines()
    {
        _run.ExitCode.Should().Be(0);
        var text = _run.ConsoleText.ToString();
        ShouldBePlain(text, new[] { "vision", "language" }, d1: true);
        Count(text, "  AdaGrad#Yogi (seed 0): ").Should().Be(1, "section 4.1's runs are listed once each");
    }

    [Fact]
    public async Task RedirectedProcessUnderCiEnvironmentPrintsPlainLines()
    {
        var dir = Path.Combine(Path.GetTempPath(), "adagraft-lab-redirect-" + Guid.NewGuid().ToString("N"));
        try {
            var lab = Path.Combine(AppContext.BaseDirectory, "AdaGraft.Lab.dll");
            File.Exists(lab).Should().BeTrue("the lab is copied beside the tests");
            var host = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH");
            if (string.IsNullOrEmpty(host) || !File.Exists(host))
                host = Path.GetFileNameWithoutExtension(Environment.ProcessPath) == "dotnet" ? Environment.ProcessPath! : "dotnet";
            var psi = new ProcessStartInfo(host) {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                UseShellExecute = false,
            };
            foreach (var a in new[] { lab, "--quick", "--tasks", "table-vision,d1", "--out", dir }) psi.ArgumentList.Add(a);
            // What GitHub Actions sets: Spectre.Console would emit colour escapes and redraw progress here on its own.
            psi.Environment["GITHUB_ACTIONS"] = "true";
            psi.Environment["CI"] = "true";
            psi.Environment["TERM"] = "xterm-256color";
            using var p = Process.Start(psi)!;
            var ct = TestContext.Current.CancellationToken;
            var stderr = p.StandardError.ReadToEndAsync(ct);
            var stdout = await p.StandardOutput.ReadToEndAsync(ct);
            using (var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct)) {
                timeout.CancelAfter(TimeSpan.FromMinutes(2));
                await p.WaitForExitAsync(timeout.Token);
            }
            p.ExitCode.Should().Be(0, stdout + await stderr);
            ShouldBePlain(stdout, new[] { "vision" }, d1: true);
            stdout.Should().NotContain("language: final training loss");
        } finally {
            if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
        }
    }
}
