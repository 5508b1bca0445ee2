using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Globalization;
using System.IO;
using Spectre.Console;

namespace AdaGraft.Lab.Output;

/// <summary>
/// The lab's two ways of talking to a terminal: live progress bars when a person watches an interactive terminal,
/// plain lines (no ANSI escapes, no redraws, no wrapping at a fixed width) when standard output goes to a file, a
/// pipe (<c>| tee</c>) or a CI log.
/// </summary>
public static class LabConsole
{
    /// <summary>The width a plain console reports to Spectre.Console: wide enough that nothing is ever hard-wrapped.</summary>
    public const int PlainWidth = 100_000;

    /// <summary>
    /// A console that writes plain lines to <paramref name="writer"/>: no colours, no ANSI escapes (whatever the
    /// environment says, CI detection included), not interactive, and so wide that Spectre.Console never wraps a line
    /// or a table.
    /// </summary>
    public static IAnsiConsole Plain(TextWriter writer)
    {
        ArgumentNullException.ThrowIfNull(writer);
        var console = AnsiConsole.Create(new AnsiConsoleSettings {
            Ansi = AnsiSupport.No,
            ColorSystem = ColorSystemSupport.NoColors,
            Interactive = InteractionSupport.No,
            Out = new AnsiConsoleOutput(writer),
            Enrichment = new ProfileEnrichment { UseDefaultEnrichers = false },
        });
        console.Profile.Width = PlainWidth;
        return console;
    }

    /// <summary>The console for standard output: <see cref="AnsiConsole.Console"/> on an interactive terminal, a
    /// <see cref="Plain"/> one when standard output is redirected.</summary>
    public static IAnsiConsole ForStandardOutput() => Console.IsOutputRedirected ? Plain(Console.Out) : AnsiConsole.Console;

    /// <summary>True when <paramref name="console"/> can redraw live progress bars (interactive and ANSI-capable).</summary>
    public static bool IsLive(IAnsiConsole console)
    {
        ArgumentNullException.ThrowIfNull(console);
        return console.Profile.Capabilities.Interactive && console.Profile.Capabilities.Ansi;
    }
}

/// <summary>One part of a lab run as the progress display sees it.</summary>
public interface ILabPhase
{
    /// <summary>The part starts.</summary>
    void Start();

    /// <summary>One training step finished.</summary>
    void Tick();

    /// <summary>A new item (a run of one cell and seed) starts; the previous one, if any, has finished.</summary>
    void Status(string item);

    /// <summary>The part turned out to need <paramref name="extraSteps"/> more steps.</summary>
    void Grow(double extraSteps);

    /// <summary>The part finished.</summary>
    void Done();
}

/// <summary>Creates the phases of a run on <paramref name="console"/>: progress bars when it is live, plain lines otherwise.</summary>
public static class LabProgress
{
    /// <summary>
    /// Runs <paramref name="body"/>, which declares its phases with the function it is given (enabled?, name, total
    /// steps; null when disabled or empty) and then runs them.
    /// </summary>
    public static void Run(IAnsiConsole console, Action<Func<bool, string, double, ILabPhase?>> body)
    {
        ArgumentNullException.ThrowIfNull(console);
        ArgumentNullException.ThrowIfNull(body);
        if (!LabConsole.IsLive(console)) {
            body((on, name, steps) => on && steps > 0 ? new PlainPhase(console, name) : null);
            return;
        }
        console.Progress()
            .AutoClear(false)
            .HideCompleted(false)
            .Columns(new TaskDescriptionColumn { Alignment = Justify.Left }, new ProgressBarColumn(), new PercentageColumn(),
                new ElapsedTimeColumn(), new RemainingTimeColumn(), new SpinnerColumn())
            .Start(ctx => body((on, name, steps) => on && steps > 0 ? new BarPhase(ctx.AddTask(Markup.Escape(name), autoStart: false, maxValue: steps), name) : null));
    }

    private sealed class BarPhase : ILabPhase
    {
        private readonly ProgressTask _task;
        private readonly string _name;

        public BarPhase(ProgressTask task, string name)
        {
            _task = task;
            _name = name;
        }

        public void Start() => _task.StartTask();

        public void Tick() => _task.Increment(1);

        public void Status(string item) => _task.Description = Markup.Escape($"{_name} — {item}");

        public void Grow(double extraSteps) => _task.MaxValue += extraSteps;

        public void Done()
        {
            _task.Description = Markup.Escape(_name);
            _task.Value = _task.MaxValue;
            _task.StopTask();
        }
    }

    /// <summary>A heading when the part starts, one line per finished item, one line when the part is done.</summary>
    private sealed class PlainPhase : ILabPhase
    {
        private readonly IAnsiConsole _console;
        private readonly string _name;
        private readonly Stopwatch _phase = new();
        private readonly Stopwatch _item = new();
        private string? _current;
        private int _items;

        public PlainPhase(IAnsiConsole console, string name)
        {
            _console = console;
            _name = name;
        }

        private void Line(string text) => _console.Profile.Out.Writer.WriteLine(text);

        public void Start()
        {
            _phase.Start();
            Line(_name);
        }

        public void Tick()
        {
        }

        public void Status(string item)
        {
            Finish();
            _current = item;
            _item.Restart();
        }

        public void Grow(double extraSteps)
        {
        }

        public void Done()
        {
            Finish();
            Line(string.Create(CultureInfo.InvariantCulture, $"{_name}: done{(_items > 0 ? $", {_items} run(s)" : "")} in {_phase.Elapsed.TotalSeconds:F1} s"));
        }

        private void Finish()
        {
            if (_current is null) return;
            Line(string.Create(CultureInfo.InvariantCulture, $"  {_current}: {_item.Elapsed.TotalSeconds:F1} s"));
            _items++;
            _current = null;
        }
    }

    /// <summary>Splits <paramref name="text"/> at top-level "; " (outside parentheses) into lines of at most
    /// <paramref name="width"/> characters where it can, indenting continuation lines by <paramref name="indent"/>.</summary>
    public static IReadOnlyList<string> ClauseLines(string text, int width = 150, string indent = "    ")
    {
        ArgumentNullException.ThrowIfNull(text);
        var clauses = new List<string>();
        int depth = 0, start = 0;
        for (int i = 0; i < text.Length; i++) {
            if (text[i] == '(') depth++;
            else if (text[i] == ')') depth = Math.Max(0, depth - 1);
            else if (depth == 0 && text[i] == ';' && i + 1 < text.Length && text[i + 1] == ' ') {
                clauses.Add(text[start..(i + 1)]);
                start = i + 2;
            }
        }
        clauses.Add(text[start..]);
        var lines = new List<string>();
        var current = "";
        foreach (var c in clauses) {
            if (current.Length == 0) current = c;
            else if (current.Length + 1 + c.Length <= width) current += " " + c;
            else {
                lines.Add(current);
                current = indent + c;
            }
        }
        lines.Add(current);
        return lines;
    }
}
