using static TorchSharp.torch.nn;

namespace AdaGraft.Benchmarks;

/// <summary>
/// The whole training loop, not just the step: TorchSharp's MNIST example network (two convolutions, max-pool, two
/// linear layers; 1.2M float32 parameters) on batches of 64 random 28 × 28 images. Cases take turns of
/// <c>stepsPerTurn</c> iterations (zero_grad, forward + backward, step) so the machine's slow phases hit every case;
/// reported per case: the forward + backward time that follows each of the case's steps, and the step time (median and
/// quartiles). Run with <c>--loop-timing [rounds] [stepsPerTurn]</c>.
/// </summary>
internal static class TrainingLoopTiming
{
    private sealed class Net : Module<Tensor, Tensor>
    {
        private readonly Module<Tensor, Tensor> _conv1 = Conv2d(1, 32, 3), _conv2 = Conv2d(32, 64, 3), _fc1 = Linear(9216, 128), _fc2 = Linear(128, 10);

        public Net() : base("mnist") => RegisterComponents();

        public override Tensor forward(Tensor x)
        {
            using var scope = NewDisposeScope();
            var h = functional.relu(_conv1.forward(x));
            h = functional.relu(_conv2.forward(h));
            h = functional.max_pool2d(h, 2);
            h = h.flatten(1);
            h = functional.relu(_fc1.forward(h));
            return functional.log_softmax(_fc2.forward(h), 1).MoveToOuterDisposeScope();
        }
    }

    public static void Run(int rounds, int stepsPerTurn)
    {
        torch.manual_seed(1);
        var model = new Net();
        var ps = model.parameters().ToList();
        Console.WriteLine($"{ps.Sum(p => p.numel()):N0} parameters in {ps.Count} tensors; libtorch threads {torch.get_num_threads()}");
        using var x = torch.randn(64, 1, 28, 28);
        using var y = torch.randint(0, 10, new long[] { 64 });
        var builtIn = optim.Adam(ps, lr: 1e-4);
        var ours = GenericSecondMomentOptimizer.TorchAdam(ps, lr: 1e-4);
        var graft = new GraftOptimizer(GenericSecondMomentOptimizer.HeavyBall(ps, 1e-4), GenericSecondMomentOptimizer.TorchAdam(ps, lr: 1), new GraftOptions { OwnsChildren = true });
        var graftEager = new GraftOptimizer(GenericSecondMomentOptimizer.HeavyBall(ps, 1e-4), GenericSecondMomentOptimizer.TorchAdam(ps, lr: 1),
            new GraftOptions { OwnsChildren = true, FusedCpuKernel = false });
        var cases = new (string name, optim.Optimizer opt)[] {
            ("built-in Adam", builtIn), ("our TorchAdam (fused)", ours), ("graft HeavyBall#TorchAdam (fused)", graft), ("graft HeavyBall#TorchAdam (eager)", graftEager),
        };
        var fb = cases.Select(_ => new List<double>()).ToArray();
        var st = cases.Select(_ => new List<double>()).ToArray();
        var sw = new Stopwatch();
        for (int r = -1; r < rounds; r++) {
            for (int c = 0; c < cases.Length; c++) {
                var opt = cases[c].opt;
                for (int i = 0; i < stepsPerTurn; i++) {
                    opt.zero_grad();
                    sw.Restart();
                    using (var output = model.forward(x))
                    using (var loss = functional.nll_loss(output, y)) loss.backward();
                    double fwdBwd = sw.Elapsed.TotalMilliseconds;
                    sw.Restart();
                    opt.step();
                    double step = sw.Elapsed.TotalMilliseconds;
                    // The first forward + backward of a turn follows the previous case's step: leave it out.
                    if (r >= 0 && i > 0) fb[c].Add(fwdBwd);
                    if (r >= 0) st[c].Add(step);
                }
            }
        }
        Console.WriteLine($"{rounds} rounds, turns of {stepsPerTurn} iterations; forward + backward after the case's own step (ms), step (ms)");
        for (int c = 0; c < cases.Length; c++) {
            Console.WriteLine($"{cases[c].name,-36} fwd+bwd median {Q(fb[c], 0.5),7:F2} ({Q(fb[c], 0.25):F2}–{Q(fb[c], 0.75):F2})   step median {Q(st[c], 0.5),6:F2} ({Q(st[c], 0.25):F2}–{Q(st[c], 0.75):F2})");
        }
        foreach (var (_, opt) in cases) opt.Dispose();
        model.Dispose();
    }

    private static double Q(List<double> xs, double q)
    {
        var s = xs.OrderBy(v => v).ToArray();
        double pos = q * (s.Length - 1);
        int lo = (int)Math.Floor(pos), hi = (int)Math.Ceiling(pos);
        return s[lo] + (s[hi] - s[lo]) * (pos - lo);
    }
}
