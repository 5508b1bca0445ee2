using System.Globalization;
using System.Threading;

namespace AdaGraft.Tests.Hardening;

/// <summary>
/// Checkpoints under hard kills: a process killed mid-save leaves the previous checkpoint loadable and at most its
/// own temporary file, which the next save of the same target (from any process) removes; temporaries of live
/// writers and of other targets are never touched.
/// </summary>
public sealed class CheckpointTemporaryTests(ITestOutputHelper output) : IDisposable
{
    private static readonly TimeSpan ChildTimeout = TimeSpan.FromSeconds(90);
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("adagraft-checkpoint-kill-");

    public void Dispose() => _dir.Delete(recursive: true);

    // ---------------------------------------------------------------- SIGKILL during saves

    /// <summary>
    /// Float32 elements of the graft the child saves: a file of 12 MB (momentum, Adam's two moments), whose save
    /// (written and flushed to disk) took 0.15–0.3 s on a 2-core CI machine, the first 2 s after the child starts.
    /// </summary>
    private const long Elements = 1_000_000;

    private static List<Parameter> LargeParameters(long elements = Elements) =>
        Fixtures.MakeParameters(new[] { new long[] { elements / 2 }, new long[] { elements / 4, 2 } }, ScalarType.Float32);

    private static GraftOptimizer LargeGraft(List<Parameter> ps) =>
        new(GenericSecondMomentOptimizer.HeavyBall(ps, 0.05), GenericSecondMomentOptimizer.Adam(ps, 1), new GraftOptions { OwnsChildren = true });

    /// <summary>
    /// Child: builds the large graft (args[2] elements, default <see cref="Elements"/>), steps once, then saves to args[0]
    /// up to args[1] times, printing "saved i" after each.
    /// </summary>
    [ChildScenario("checkpoint-save-loop")]
    public static int SaveLoop(string[] args)
    {
        string file = args[0];
        int saves = int.Parse(args[1], CultureInfo.InvariantCulture);
        var ps = LargeParameters(args.Length > 2 ? long.Parse(args[2], CultureInfo.InvariantCulture) : Elements);
        using var graft = LargeGraft(ps);
        Fixtures.SetGradients(ps, 0);
        graft.step();
        for (int i = 0; i < saves; i++) {
            graft.save_state_dict(file);
            Console.WriteLine("saved " + i.ToString(CultureInfo.InvariantCulture));
        }
        return 0;
    }

    [Fact]
    public void ACheckpointKilledMidSaveAlwaysLoadsAndTheNextSaveRemovesTheDeadWritersTemporaries()
    {
        const int minKills = 8, maxKills = 16, maxDelayMs = 200;
        var random = new Random(12);
        string file = Path.Combine(_dir.FullName, "model.ckpt");
        int kills = 0, landed = 0;
        var sizes = new List<long>();
        string[] leftBehind = Array.Empty<string>();
        // At least minKills kills; more (up to maxKills) until the last one is known to have landed mid-save, so that the
        // parent's own save below has a dead writer's temporary to remove.
        while (kills < minKills || (leftBehind.Length == 0 && kills < maxKills)) {
            int delay = random.Next(0, maxDelayMs + 1);
            int pid;
            using (var child = ChildProcess.Start("checkpoint-save-loop", file, "100")) {
                pid = child.Id;
                string? first = child.ReadLine(ChildTimeout);
                if (first != "saved 0") throw new InvalidOperationException($"The child did not complete a save: {first}\n{child.WaitForExit(ChildTimeout)}");
                Thread.Sleep(delay);
                child.Kill();
                child.WaitForExit(TimeSpan.Zero).Signal.Should().Be(OperatingSystem.IsWindows() ? null : 9, "the child must have been killed, not have finished");
            }
            kills++;

            leftBehind = Temporaries(file);
            // Whatever temporaries earlier children left were removed by this child's first save; only its own may remain.
            // (None at all when the kill fell between two saves: FluentAssertions' OnlyContain would reject that case.)
            leftBehind.Where(t => !Path.GetFileName(t).StartsWith($"model.ckpt.tmp-{pid}-", StringComparison.Ordinal)).Should()
                .BeEmpty("the child's save removes temporaries of dead writers (kill {0}, delay {1} ms)", kills, delay);
            if (leftBehind.Length > 0) {
                landed++;
                sizes.AddRange(leftBehind.Select(t => new FileInfo(t).Length));
            }
            using var loaded = LoadFresh(file);     // always a complete checkpoint
        }

        landed.Should().BeGreaterThan(0, "some kill must land mid-save, or this test proves nothing ({0} kills)", kills);
        leftBehind.Should().NotBeEmpty();
        var ps = LargeParameters();
        using (var graft = LargeGraft(ps)) {
            graft.load_state_dict(file);
            graft.save_state_dict(file);
        }
        Temporaries(file).Should().BeEmpty("a save from a live process removes the temporaries of dead writers");
        Directory.GetFiles(_dir.FullName).Should().Equal(new[] { file });
        using var last = LoadFresh(file);
        output.WriteLine($"checkpoint kill test: {kills} kills, {landed} mid-save, temporaries of {string.Join(", ", sizes.Select(s => (s >> 20) + " MiB"))}, target {new FileInfo(file).Length >> 20} MiB");
    }

    private static GraftOptimizer LoadFresh(string file)
    {
        var graft = LargeGraft(LargeParameters());
        try {
            graft.load_state_dict(file);
            return graft;
        } catch {
            graft.Dispose();
            throw;
        }
    }

    private static string[] Temporaries(string file) =>
        Directory.GetFiles(Path.GetDirectoryName(file)!, Path.GetFileName(file) + ".tmp-*");

    // ---------------------------------------------------------------- which temporaries a save removes

    /// <summary>Child: prints its pid and the start token of its temporary names, then waits args[0] ms.</summary>
    [ChildScenario("checkpoint-start-token")]
    public static int PrintStartToken(string[] args)
    {
        Console.WriteLine(Environment.ProcessId.ToString(CultureInfo.InvariantCulture) + " " + AtomicFile.CurrentStartToken);
        Thread.Sleep(int.Parse(args[0], CultureInfo.InvariantCulture));
        return 0;
    }

    /// <summary>The same start token, moved to a later start (beyond the tolerance of start times read as dates).</summary>
    private static string LaterStart(string token) => token[0] switch {
        'j' => "j" + (long.Parse(token[1..], CultureInfo.InvariantCulture) + 1).ToString(CultureInfo.InvariantCulture),
        't' => "t" + (long.Parse(token[1..], CultureInfo.InvariantCulture) + 10 * TimeSpan.TicksPerSecond).ToString(CultureInfo.InvariantCulture),
        _ => throw new InvalidOperationException($"This process's start time is unknown ({token}): PID reuse cannot be recognized."),
    };

    private static void Save(string file)
    {
        using var opt = Fixtures.Trained(p => GenericSecondMomentOptimizer.Adam(p, 0.01), 1, out var ps);
        opt.save_state_dict(file);
    }

    [Fact]
    public void ASaveRemovesOnlyItsOwnTargetsTemporariesOfWritersThatNoLongerRun()
    {
        string file = Path.Combine(_dir.FullName, "model.ckpt");
        int self = Environment.ProcessId;
        string own = AtomicFile.CurrentStartToken;
        own.Should().MatchRegex("^[jt][0-9]+$", "the start time of a running process can be read on this platform");
        AtomicFile.StartToken(self).Should().Be(own);

        using var other = ChildProcess.Start("checkpoint-start-token", "60000");
        var line = other.ReadLine(ChildTimeout)!.Split(' ');
        int otherPid = int.Parse(line[0], CultureInfo.InvariantCulture);
        string otherToken = line[1];
        otherPid.Should().Be(other.Id);

        string Touch(string name)
        {
            string path = Path.Combine(_dir.FullName, name);
            File.WriteAllBytes(path, new byte[] { 1, 2, 3 });
            return path;
        }
        string Temp(string target, int pid, string token, string random = "0123abcd") =>
            Touch(Path.GetFileName(AtomicFile.TempName(Path.Combine(_dir.FullName, target), pid, token, random)));

        var kept = new List<string> {
            Temp("model.ckpt", self, own),                                  // this process: may be saving right now
            Temp("model.ckpt", otherPid, otherToken, "4567cdef"),           // another live process
            Touch($"model.ckpt.tmp-{self}-89abcdef"),                       // the earlier form, live pid
            Touch($"model.ckpt.tmp-{otherPid}-u-0123abcd"),                 // start unknown, live pid
            Temp("model.ckpt2", otherPid, LaterStart(otherToken)),          // other targets, even with stale writers
            Temp("other", otherPid, LaterStart(otherToken)),
            Touch($"model.ckpt2.tmp-{otherPid}-89abcdef"),
            Touch($"model.ckpt.tmp-{otherPid}-{LaterStart(otherToken)}-xyz"),  // not a name AtomicFile writes
            Touch("model.ckpt.tmp-notes.txt"),
            Touch("model.ckpt.bak"),
        };
        var removedNow = new List<string> {
            Temp("model.ckpt", self, LaterStart(own), "00000001"),          // this pid, another start: the pid was reused
            Temp("model.ckpt", otherPid, LaterStart(otherToken), "00000002"),
        };

        Save(file);
        Directory.GetFiles(_dir.FullName).Should().BeEquivalentTo(kept.Append(file), "temporaries of live writers and of other targets stay");

        // The other process ends (SIGKILL): now its temporaries are stale, in both forms.
        other.Kill();
        var removedLater = new[] { kept[1], kept[3] };
        string oldForm = Touch($"model.ckpt.tmp-{otherPid}-89abcdef");
        Save(file);
        Directory.GetFiles(_dir.FullName).Should().BeEquivalentTo(kept.Except(removedLater).Append(file),
            "the temporaries of the killed process ({0}) are removed: {1}", otherPid, string.Join(", ", removedNow.Concat(removedLater).Append(oldForm).Select(Path.GetFileName)));
    }

    [Fact]
    public void ASaveThatFailsRemovesNoOtherTemporary()
    {
        string file = Path.Combine(_dir.FullName, "model.ckpt");
        string stale = AtomicFile.TempName(file, Environment.ProcessId, LaterStart(AtomicFile.CurrentStartToken), "0123abcd");
        File.WriteAllBytes(stale, new byte[] { 1 });

        var failing = () => AtomicFile.Write(file, _ => throw new IOException("disk full (simulated)"));

        failing.Should().Throw<IOException>();
        Directory.GetFiles(_dir.FullName).Should().Equal(new[] { stale }, "a save that fails removes its own temporary and nothing else");
        AtomicFile.Write(file, w => w.Write(1));
        Directory.GetFiles(_dir.FullName).Should().Equal(new[] { file });
    }

    [Fact]
    public void TheRenameIsMadeDurableBySyncingTheDirectoryOnLinuxAndMacOS()
    {
        bool expected = OperatingSystem.IsLinux() || OperatingSystem.IsMacOS();
        AtomicFile.SyncDirectory(_dir.FullName).Should().Be(expected, "fsync on the directory is available (libc resolved, directory opened)");
        AtomicFile.SyncDirectory(Path.Combine(_dir.FullName, "missing")).Should().BeFalse("a directory that cannot be opened is skipped");
    }
}
