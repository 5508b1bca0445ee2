using AdaGraft.Rules;

namespace AdaGraft.Benchmarks;

/// <summary>
/// Development aid: the fused Adam kernel alone (plans gathered once, the step's parallel runner) over 10M float32
/// elements laid out three ways: 10 tensors of 1M, 1,000 tensors of 10k each allocated apart (as a model's parameters
/// and their state are), and 1,000 segments of 10k in four flat buffers. Tells whether the kernel's extra time over
/// many small tensors is per work item or the memory layout. Run with <c>--kernel-layout</c>.
/// </summary>
internal static class KernelLayout
{
    public static void Run()
    {
        // group: tensors one work item sweeps (1: an item per tensor or chunk); prefetch: the next tensor's first lines.
        var cases = new (string name, int group, bool prefetch, Func<(IntPtr[] w, IntPtr[] g, IntPtr[] m, IntPtr[] v, long n, List<Tensor> keep)> make)[] {
            ("10 x 1M, separate", 1, false, () => Separate(10, 1_000_000)),
            ("1000 x 10k, separate", 1, false, () => Separate(1000, 10_000)),
            ("1000 x 10k, segments of flat buffers", 1, false, () => Flat(1000, 10_000)),
            ("1000 x 10k, separate, grouped", 4, false, () => Separate(1000, 10_000)),
            ("1000 x 10k, segments, grouped", 4, false, () => Flat(1000, 10_000)),
            ("1000 x 10k, separate, grouped, prefetch", 4, true, () => Separate(1000, 10_000)),
        };
        var made = cases.Select(c => (c.name, c.group, c.prefetch, data: c.make())).ToList();
        var times = made.Select(_ => new List<double>()).ToList();
        var sw = new Stopwatch();
        for (int round = 0; round < 60; round++) {
            for (int k = 0; k < made.Count; k++) {
                var (w, g, m, v, n, _) = made[k].data;
                var plans = new FusedPlan[w.Length];
                for (int t = 0; t < w.Length; t++)
                    plans[t] = new FusedPlan { HasM1 = true, Beta1 = 0.9, C1 = 0.1, Preconditioned = true, Beta2 = 0.999, C2 = 0.001, EpsTerm = 1e-8, Scale = -1e-6, M1 = m[t], M2 = v[t] };
                var items = new List<FusedCpu.WorkItem>();
                for (int t = 0; t < w.Length; t++) FusedCpu.Split(items, t, n, 0, 0);
                var (_, group, prefetch, _) = made[k];
                sw.Restart();
                if (group == 1) {
                    FusedCpu.Run(items.Count, n * w.Length, j => {
                        var (t, start, length, _) = items[j];
                        FusedCpu.Step<float>(plans[t], w[t], g[t], start, start + length);
                    });
                } else {
                    FusedCpu.Run((w.Length + group - 1) / group, n * w.Length, j => {
                        int end = Math.Min(w.Length, (j + 1) * group);
                        for (int t = j * group; t < end; t++) {
                            if (prefetch && t + 1 < w.Length) Prefetch(w[t + 1], g[t + 1], m[t + 1], v[t + 1]);
                            FusedCpu.Step<float>(plans[t], w[t], g[t], 0, n);
                        }
                    });
                }
                if (round >= 10) times[k].Add(sw.Elapsed.TotalMilliseconds);
            }
        }
        for (int k = 0; k < made.Count; k++) {
            var s = times[k].OrderBy(x => x).ToArray();
            Console.WriteLine($"{made[k].name,-40} median {s[s.Length / 2],7:F3} ms  quartiles {s[s.Length / 4]:F3}-{s[3 * s.Length / 4]:F3}");
        }
    }

    /// <summary>
    /// The whole fused step at 10 × 1M and at 1,000 × 10k, fused <c>TorchAdam</c> and the closed-form SGD#Adam graft,
    /// the four cases alternated round by round (so a slow phase of the machine lands on all of them), medians and
    /// quartiles. Run with <c>--tensor-count-ab [rounds]</c>.
    /// </summary>
    public static void RunSteps(int rounds)
    {
        var few = Workload.Parameters(10, 1_000_000);
        var many = Workload.Parameters(1_000, 10_000);
        var cases = new (string name, optim.Optimizer opt)[] {
            ("fused TorchAdam, 10 x 1M", GenericSecondMomentOptimizer.TorchAdam(few, lr: 1e-3)),
            ("fused TorchAdam, 1000 x 10k", GenericSecondMomentOptimizer.TorchAdam(many, lr: 1e-3)),
            ("fused closed-form SGD#Adam, 10 x 1M", Workload.SgdAdamGraft(few)),
            ("fused closed-form SGD#Adam, 1000 x 10k", Workload.SgdAdamGraft(many)),
        };
        var times = cases.Select(_ => new List<double>()).ToArray();
        var sw = new Stopwatch();
        for (int round = 0; round < rounds + 5; round++) {
            for (int k = 0; k < cases.Length; k++) {
                sw.Restart();
                for (int i = 0; i < 5; i++) cases[k].opt.step();
                if (round >= 5) times[k].Add(sw.Elapsed.TotalMilliseconds / 5);
            }
        }
        double Median(int k) => times[k].OrderBy(x => x).ElementAt(times[k].Count / 2);
        for (int k = 0; k < cases.Length; k++) {
            var s = times[k].OrderBy(x => x).ToArray();
            Console.WriteLine($"{cases[k].name,-40} median {s[s.Length / 2],7:F3} ms  quartiles {s[s.Length / 4]:F3}-{s[3 * s.Length / 4]:F3}");
        }
        // Ratios per round (each round's pair measured back to back), then their median.
        double RatioMedian(int a, int b) => times[b].Zip(times[a], (x, y) => x / y).OrderBy(x => x).ElementAt(times[a].Count / 2);
        Console.WriteLine($"TorchAdam 1000 x 10k / 10 x 1M: {Median(1) / Median(0):F2} (ratio of medians), {RatioMedian(0, 1):F2} (median of per-round ratios)");
        Console.WriteLine($"SGD#Adam 1000 x 10k / 10 x 1M: {Median(3) / Median(2):F2} (ratio of medians), {RatioMedian(2, 3):F2} (median of per-round ratios)");
        foreach (var (_, opt) in cases) opt.Dispose();
        foreach (var p in few.Concat(many)) p.Dispose();
    }

    private static unsafe void Prefetch(IntPtr w, IntPtr g, IntPtr m, IntPtr v)
    {
        for (int line = 0; line < 16; line++) {
            System.Runtime.Intrinsics.X86.Sse.Prefetch0((byte*)w + line * 64);
            System.Runtime.Intrinsics.X86.Sse.Prefetch0((byte*)g + line * 64);
            System.Runtime.Intrinsics.X86.Sse.Prefetch0((byte*)m + line * 64);
            System.Runtime.Intrinsics.X86.Sse.Prefetch0((byte*)v + line * 64);
        }
    }

    private static (IntPtr[], IntPtr[], IntPtr[], IntPtr[], long, List<Tensor>) Separate(int count, long n)
    {
        var keep = new List<Tensor>();
        // Allocated tensor by tensor (w, g, m, v of one tensor, then the next), as a model and its optimizer state are.
        var w = new IntPtr[count]; var g = new IntPtr[count]; var m = new IntPtr[count]; var v = new IntPtr[count];
        for (int i = 0; i < count; i++) {
            foreach (var (arr, random) in new[] { (w, true), (g, true), (m, false), (v, false) }) {
                var t = random ? torch.randn(n) : torch.zeros(n);
                keep.Add(t);
                arr[i] = FusedCpu.Pointer(t);
            }
        }
        return (w, g, m, v, n, keep);
    }

    private static (IntPtr[], IntPtr[], IntPtr[], IntPtr[], long, List<Tensor>) Flat(int count, long n)
    {
        var keep = new List<Tensor>();
        IntPtr[] Make(bool random)
        {
            var t = random ? torch.randn(count * n) : torch.zeros(count * n);
            keep.Add(t);
            var at = FusedCpu.Pointer(t);
            return Enumerable.Range(0, count).Select(i => at + (nint)(i * n * sizeof(float))).ToArray();
        }
        return (Make(true), Make(true), Make(false), Make(false), n, keep);
    }
}
