namespace AdaGraft.Benchmarks;

/// <summary>
/// Development aid for noisy machines: alternates short rounds of each case (A, B, C, A, B, C, …) so that slow
/// phases of the machine hit every case alike, and reports each case's median round time and the median of the
/// per-round ratios to its reference case. Run with <c>--ab-timing [rounds] [elements]</c> (10 tensors).
/// </summary>
internal static class AbTiming
{
    public static void Run(int rounds, long elements, int stepsPerRound = 5, int[]? only = null)
    {
        var ps = Workload.Parameters(10, elements);
        using var sgd = GenericSecondMomentOptimizer.HeavyBall(ps, 1e-3);
        using var adam = GenericSecondMomentOptimizer.TorchAdam(ps, lr: 1e-3);
        using var perTensor = Workload.SgdAdamGraft(ps);
        using var global = Workload.SgdAdamGraft(ps, new GraftOptions { Granularity = GraftGranularity.Global });
        using var builtInSgd = optim.SGD(ps, 1e-3, momentum: 0.9);
        using var builtInAdam = optim.Adam(ps, lr: 1e-3);
        using var blackBox = Workload.BuiltInBlackBox(ps);
        using var blackBoxGlobal = Workload.BuiltInBlackBox(ps, new GraftOptions { Granularity = GraftGranularity.Global });
        using var blackBoxEager = Workload.BuiltInBlackBox(ps, new GraftOptions { FusedCpuKernel = false });
        var scratch = ps.Select(p => torch.empty_like(p)).ToArray();
        using var probe = torch.zeros(1_000_000);
        // The black-box graft of two of our (allocation-free) fused optimizers isolates the graft's own passes from the
        // built-ins' per-op temporaries, whose page faults swing the built-in cases on this VM.
        using var oursBlackBox = Workload.SgdAdamGraft(ps, new GraftOptions { Path = GraftPath.BlackBox });
        using var sgd2 = GenericSecondMomentOptimizer.HeavyBall(ps, 1e-3);
        using var adam2 = GenericSecondMomentOptimizer.TorchAdam(ps, lr: 1);
        void TwoCopies()
        {
            using var _ = torch.no_grad();
            for (int i = 0; i < ps.Count; i++) scratch[i].copy_(ps[i]);
            for (int i = 0; i < ps.Count; i++) ps[i].copy_(scratch[i]);
        }
        // (name, step, index of the case it is compared with)
        var cases = new List<(string name, Action step, int reference)> {
            ("our HeavyBall + our TorchAdam (fused)", () => { sgd.step(); adam.step(); }, 0),
            ("fused graft SGD#Adam, per tensor", () => perTensor.step(), 0),
            ("fused graft SGD#Adam, global", () => global.step(), 0),
            ("built-in SGD + built-in Adam + 2 copies", () => {
                builtInSgd.step();
                builtInAdam.step();
                TwoCopies();
            }, 3),
            ("black-box graft of the built-ins", () => blackBox.step(), 3),
            ("black-box graft of the built-ins, global", () => blackBoxGlobal.step(), 3),
            ("black-box graft of the built-ins, eager", () => blackBoxEager.step(), 3),
            ("our HeavyBall + our TorchAdam + 2 copies", () => { sgd2.step(); adam2.step(); TwoCopies(); }, 7),
            ("black-box graft of our HeavyBall and TorchAdam", () => oursBlackBox.step(), 7),
            // What a training loop adds: a libtorch operation (here a 1M-element add, as a backward pass ends with)
            // right before the step leaves libtorch's OpenMP threads spinning while the fused kernels run.
            ("libtorch add_ (1M), then nothing", () => { using var _ = torch.no_grad(); probe.add_(1.0); }, 9),
            ("libtorch add_ (1M), then our two fused steps", () => { using (torch.no_grad()) probe.add_(1.0); sgd.step(); adam.step(); }, 9),
            // What the fast path's safety costs: the checks every step makes before anything changes (gradients, state
            // extents, shared memory) and the version-counter bumps after the kernels, against the two fused steps.
            ("checks of our two optimizers (per step)", () => { sgd.ValidateForStep(); adam.ValidateForStep(); }, 0),
            ("version bumps of our two optimizers", () => {
                using var _ = torch.no_grad();
                // As the two fused steps do: each bumps its parameters (a kept empty view each) and its handed-out slots.
                foreach (var p in ps) {
                    sgd.StateOf(p).MarkParameterWritten(IntPtr.Zero);
                    sgd.StateOf(p).MarkSlotsWritten();
                    adam.StateOf(p).MarkParameterWritten(IntPtr.Zero);
                    adam.StateOf(p).MarkSlotsWritten();
                }
            }, 0),
        };
        if (only is not null) cases = only.Select(i => cases[i] with { reference = Array.IndexOf(only, cases[i].reference) is var r && r >= 0 ? r : 0 }).ToList();
        var times = cases.Select(_ => new List<double>()).ToArray();
        foreach (var (_, step, _) in cases) for (int i = 0; i < 3; i++) step();
        var sw = new Stopwatch();
        for (int r = 0; r < rounds; r++) {
            for (int c = 0; c < cases.Count; c++) {
                sw.Restart();
                for (int i = 0; i < stepsPerRound; i++) cases[c].step();
                times[c].Add(sw.Elapsed.TotalMilliseconds / stepsPerRound);
            }
        }
        Console.WriteLine($"10 x {elements:N0} float32, {rounds} rounds of {stepsPerRound} steps, cases alternated; fused kernels "
            + (AdaGraft.Rules.CpuSwitches.FusedKernels ? "on" : "off") + ", parallel loops on "
            + (AdaGraft.Rules.OpenMpRunner.IsAvailable ? $"libtorch's OpenMP team ({AdaGraft.Rules.OpenMpRunner.Library})" : $"Parallel.For ({AdaGraft.Rules.OpenMpRunner.Reason ?? "switched off"})"));
        for (int c = 0; c < cases.Count; c++) {
            var ratios = times[c].Zip(times[cases[c].reference], (a, b) => a / b).ToList();
            Console.WriteLine($"{cases[c].name,-42} median {Median(times[c]),8:F3} ms (quartiles {Quantile(times[c], 0.25):F3}–{Quantile(times[c], 0.75):F3})   median ratio to case {cases[c].reference} {Median(ratios),6:F3}   (quartiles {Quantile(ratios, 0.25):F3}–{Quantile(ratios, 0.75):F3})");
        }
        foreach (var t in scratch) t.Dispose();
        foreach (var p in ps) p.Dispose();
    }

    private static double Median(List<double> xs) => Quantile(xs, 0.5);

    private static double Quantile(List<double> xs, double q)
    {
        var s = xs.OrderBy(x => x).ToArray();
        double pos = q * (s.Length - 1);
        int lo = (int)Math.Floor(pos), hi = (int)Math.Ceiling(pos);
        return s[lo] + (s[hi] - s[lo]) * (pos - lo);
    }
}
