using AdaGraft.Rules;

namespace AdaGraft.Benchmarks;

/// <summary>
/// Development aid (not a benchmark result): Algorithm 1's fused kernels compiled for their kernel shapes (the plan's
/// fixed switches folded away, <see cref="FusedShapes"/>) against the same kernels with every switch read from the plan
/// (the open shape), single-threaded over one tensor in 32k-element chunks, cases alternated over 300 rounds (the
/// first 100 dropped). Run with <c>--kernel-shapes elements</c>.
/// </summary>
internal static class KernelShapes
{
    public static void Run(long n)
    {
        using var f = new HeavyBallAdamFixture(n);
        var (hb, adam, pw, pg, po) = (f.HeavyBall, f.Adam, f.Pw, f.Pg, f.Po);
        const long chunk = 1 << 15;
        void Chunks(Action<long, long> a) { for (long s = 0; s < n; s += chunk) a(s, Math.Min(n, s + chunk)); }
        var cases = new (string, Action)[] {
            ("step HB + step Adam, shaped", () => Chunks((s, e) => { FusedCpu.Step<float>(hb, pw, pg, s, e); FusedCpu.Step<float>(adam, pw, pg, s, e); })),
            ("step HB + step Adam, open shape", () => Chunks((s, e) => {
                FusedCpu.Step<float, FusedShapes.Open>(hb, pw, pg, s, e);
                FusedCpu.Step<float, FusedShapes.Open>(adam, pw, pg, s, e);
            })),
            ("graft propose HB#Adam, shaped", () => Chunks((s, e) => FusedCpu.Propose<float>(hb, adam, pw, pg, po, s, e))),
            ("graft propose HB#Adam, open shapes", () => Chunks((s, e) =>
                FusedCpu.Propose<float, FusedShapes.Open, FusedShapes.Open>(new FusedCpu.ProposeArgs(hb, adam, pw, pg, po, s, e, false)))),
        };
        var times = cases.Select(_ => new List<double>()).ToArray();
        var sw = new Stopwatch();
        for (int r = 0; r < 300; r++) {
            for (int c = 0; c < cases.Length; c++) {
                sw.Restart();
                cases[c].Item2();
                times[c].Add(sw.Elapsed.TotalMilliseconds);
            }
        }
        for (int c = 0; c < cases.Length; c++) {
            var s = times[c].Skip(100).OrderBy(x => x).ToList();
            Console.WriteLine($"{cases[c].Item1,-36} median {s[s.Count / 2],8:F4} ms  best {s[0],8:F4}");
        }
    }
}
