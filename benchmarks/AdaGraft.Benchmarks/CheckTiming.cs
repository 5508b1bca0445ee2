namespace AdaGraft.Benchmarks;

/// <summary>
/// Development aid: where a step's per-tensor host time goes (the checks before a step, the version bumps after the
/// kernels) for many small tensors. Run with <c>--check-timing [tensors] [elements]</c>.
/// </summary>
internal static class CheckTiming
{
    public static void Run(int tensors, long elements)
    {
        var ps = Workload.Parameters(tensors, elements);
        using var adam = GenericSecondMomentOptimizer.TorchAdam(ps, lr: 1e-3);
        adam.step();
        var parts = new (string name, Action run)[] {
            ("whole fused TorchAdam step", () => adam.step()),
            ("ValidateForStep (all checks)", () => adam.ValidateForStep()),
            ("gradient checks", () => {
                for (int i = 0; i < ps.Count; i++) {
                    using var g = ps[i].grad;
                    GradientChecks.Check(ps[i], g!, i);
                }
            }),
            ("state fit checks", () => { for (int i = 0; i < ps.Count; i++) adam.StateOf(ps[i]).CheckFits(i); }),
            ("shared-memory check", () => GradientChecks.CheckDisjoint(ps)),
            ("p.grad read + dispose", () => { foreach (var p in ps) { using var g = p.grad; } }),
            ("p.grad read in a dispose scope", () => {
                using var scope = torch.NewDisposeScope();
                foreach (var p in ps) _ = p.grad;
            }),
            ("checks with grads in a scope", () => {
                using var scope = torch.NewDisposeScope();
                for (int i = 0; i < ps.Count; i++) {
                    var g = ps[i].grad;
                    GradientChecks.Check(ps[i], g!, i);
                    adam.StateOf(ps[i]).CheckFits(i);
                }
            }),
            ("p.shape read", () => { foreach (var p in ps) _ = p.shape; }),
            ("p.dtype read", () => { foreach (var p in ps) _ = p.dtype; }),
            ("p.size(0) read", () => { foreach (var p in ps) _ = p.size(0); }),
            ("version bumps (parameter + slots)", () => {
                using var _ = torch.no_grad();
                foreach (var p in ps) {
                    adam.StateOf(p).MarkParameterWritten(IntPtr.Zero);
                    adam.StateOf(p).MarkSlotsWritten();
                }
            }),
            ("StateOf lookups", () => { foreach (var p in ps) _ = adam.StateOf(p); }),
        };
        foreach (var (_, run) in parts) for (int i = 0; i < 5; i++) run();
        var sw = new Stopwatch();
        foreach (var (name, run) in parts) {
            var times = new double[15];
            for (int r = 0; r < times.Length; r++) {
                sw.Restart();
                for (int i = 0; i < 5; i++) run();
                times[r] = sw.Elapsed.TotalMilliseconds / 5;
            }
            Array.Sort(times);
            Console.WriteLine($"{name,-32} median {times[7],8:F3} ms  = {times[7] * 1000 / tensors,7:F2} µs per tensor");
        }
        foreach (var p in ps) p.Dispose();
    }
}
