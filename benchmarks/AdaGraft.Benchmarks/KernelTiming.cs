using AdaGraft.Rules;

namespace AdaGraft.Benchmarks;

/// <summary>
/// Development aid (not a benchmark result): single-threaded times of the fused CPU kernels on one tensor, to see
/// where a fused step spends its time. Run with <c>--kernel-timing [elements]</c>.
/// </summary>
internal static class KernelTiming
{
    public static void Run(long n)
    {
        using var f = new HeavyBallAdamFixture(n);
        var (w, o, hb, adam, pw, pg, po) = (f.W, f.O, f.HeavyBall, f.Adam, f.Pw, f.Pg, f.Po);
        void Time(string name, Action a)
        {
            for (int i = 0; i < 3; i++) a();
            const int reps = 20;
            var sw = Stopwatch.StartNew();
            double best = double.MaxValue;
            for (int i = 0; i < reps; i++) {
                sw.Restart();
                a();
                best = Math.Min(best, sw.Elapsed.TotalMilliseconds);
            }
            Console.WriteLine($"{name,-40} {best,8:F3} ms (best of {reps})");
        }
        Time("copy_", () => o.copy_(w));
        Time("step heavy ball", () => FusedCpu.Step<float>(hb, pw, pg, 0, n));
        Time("step Adam", () => FusedCpu.Step<float>(adam, pw, pg, 0, n));
        Time("graft propose (both, ΔD out, norms)", () => FusedCpu.Propose<float>(hb, adam, pw, pg, po, 0, n));
        Time("graft apply", () => FusedCpu.Apply<float>(pw, po, IntPtr.Zero, 0.5, 0, 0, n));
    }

    /// <summary>
    /// The black-box graft's own passes over 10 tensors of <paramref name="n"/> float32 elements, multi-threaded as in
    /// a step, against the two copies they replace or add to. Run with <c>--kernel-timing-blackbox [elements]</c>.
    /// </summary>
    public static void RunBlackBox(long n)
    {
        torch.manual_seed(1);
        var ws = Enumerable.Range(0, 10).Select(_ => torch.randn(n)).ToArray();
        var ss = ws.Select(w => w.clone()).ToArray();
        var w = ws.Select(FusedCpu.Pointer).ToArray();
        var s = ss.Select(FusedCpu.Pointer).ToArray();
        var items = new System.Collections.Generic.List<FusedCpu.WorkItem>();
        for (int t = 0; t < 10; t++) FusedCpu.Split(items, t, n, 0, t);
        int per = items.Count / 10;
        void All(Action<FusedCpu.WorkItem> body) => FusedCpu.Run(items.Count, 10 * n, j => body(items[j]));
        var cases = new (string name, Action run)[] {
            ("torch copy_ w -> s (what the baseline copies cost)", () => { for (int t = 0; t < 10; t++) ss[t].copy_(ws[t]); }),
            ("Save: streamed copy w -> s (all items)", () => All(x => FusedCpu.Save<float>(w[x.Tensor], s[x.Tensor], x.Start, x.Start + x.Length))),
            ("measure and restore (all items)", () => All(x => FusedCpu.MeasureAndRestore<float>(w[x.Tensor], s[x.Tensor], x.Start, x.Start + x.Length))),
            ("measure (all items)", () => All(x => FusedCpu.Measure<float>(w[x.Tensor], s[x.Tensor], x.Start, x.Start + x.Length))),
            ("combine r = 1 (all items)", () => All(x => FusedCpu.Combine<float>(w[x.Tensor], s[x.Tensor], 1.0, x.Start, x.Start + x.Length))),
            ("measure then combine r = 1, tensor by tensor", () => {
                for (int t = 0; t < 10; t++) {
                    int first = t * per;
                    FusedCpu.Run(per, n, k => { var x = items[first + k]; FusedCpu.Measure<float>(w[t], s[t], x.Start, x.Start + x.Length); });
                    FusedCpu.Run(per, n, k => { var x = items[first + k]; FusedCpu.Combine<float>(w[t], s[t], 1.0, x.Start, x.Start + x.Length); });
                }
            }),
        };
        // Cases alternate (and the first rounds are dropped) so that the machine's slow phases and tier-up hit all alike.
        var times = cases.Select(_ => new System.Collections.Generic.List<double>()).ToArray();
        var sw = new Stopwatch();
        for (int r = 0; r < 160; r++) {
            for (int c = 0; c < cases.Length; c++) {
                sw.Restart();
                cases[c].run();
                if (r >= 10) times[c].Add(sw.Elapsed.TotalMilliseconds);
            }
        }
        Console.WriteLine($"10 x {n:N0} float32, {torch.get_num_threads()} threads, 150 alternated rounds");
        for (int c = 0; c < cases.Length; c++) {
            times[c].Sort();
            Console.WriteLine($"{cases[c].name,-52} median {times[c][times[c].Count / 2],8:F3} ms  best {times[c][0],8:F3} ms");
        }
        foreach (var t in ws.Concat(ss)) t.Dispose();
    }
}

/// <summary>
/// One float32 tensor of <c>n</c> elements with a gradient, a ΔD buffer and the slots of a heavy-ball and an Adam
/// plan (what the kernel dev aids time), with the plans and data addresses.
/// </summary>
internal sealed class HeavyBallAdamFixture : IDisposable
{
    private readonly Tensor _g, _mM, _m1, _m2;

    public HeavyBallAdamFixture(long n)
    {
        torch.manual_seed(1);
        W = torch.randn(n);
        _g = torch.randn(n);
        _mM = torch.zeros(n);
        _m1 = torch.zeros(n);
        _m2 = torch.zeros(n);
        O = torch.empty(n);
        HeavyBall = new FusedPlan { HasM1 = true, Beta1 = 0.9, C1 = 1, Scale = -1e-3, M1 = FusedCpu.Pointer(_mM) };
        Adam = new FusedPlan {
            HasM1 = true,
            Beta1 = 0.9,
            C1 = 0.1,
            Preconditioned = true,
            Beta2 = 0.999,
            C2 = 0.001,
            EpsTerm = 1e-8,
            Scale = -1e-3,
            M1 = FusedCpu.Pointer(_m1),
            M2 = FusedCpu.Pointer(_m2),
        };
        (Pw, Pg, Po) = (FusedCpu.Pointer(W), FusedCpu.Pointer(_g), FusedCpu.Pointer(O));
    }

    /// <summary>The parameter and the ΔD buffer.</summary>
    public Tensor W { get; }

    /// <inheritdoc cref="W"/>
    public Tensor O { get; }

    public FusedPlan HeavyBall { get; }

    public FusedPlan Adam { get; }

    /// <summary>Data addresses of the parameter, the gradient and the ΔD buffer.</summary>
    public IntPtr Pw { get; }

    /// <inheritdoc cref="Pw"/>
    public IntPtr Pg { get; }

    /// <inheritdoc cref="Pw"/>
    public IntPtr Po { get; }

    public void Dispose()
    {
        foreach (var t in new[] { W, _g, _mM, _m1, _m2, O }) t.Dispose();
    }
}
