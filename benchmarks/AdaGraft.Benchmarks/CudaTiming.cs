namespace AdaGraft.Benchmarks;

/// <summary>
/// `--device-timing [cuda|cpu] [elements-per-tensor]`: per-step wall time of several steps at 10 tensors × N float32
/// (default 10M, i.e. 100M parameters), synchronised and enqueue-only (stopwatch read before synchronising:
/// a step that never blocks the host enqueues much faster than it runs).
/// </summary>
public static class DeviceTiming
{
    private static GraftOptimizer Recorded(List<Parameter> ps)
    {
        var graft = Workload.SgdAdaGradGraft(ps);
        _ = new AdaGraft.Diagnostics.StepNormRecorder(graft, new AdaGraft.Diagnostics.RecorderOptions { FlushEvery = 100 });
        return graft;
    }

    public static void Run(string deviceName, long elements)
    {
        var device = torch.device(deviceName);
        bool cuda = device.type == DeviceType.CUDA;
        var ps = Workload.Parameters(10, elements, device);
        var scratch = ps.Select(p => torch.empty_like(p)).ToArray();
        Console.WriteLine($"device {deviceName}, 10 x {elements:N0} float32 = {10 * elements / 1e6:F0}M parameters");

        using var sgd = GenericSecondMomentOptimizer.HeavyBall(ps, 1e-3);
        using var adam = GenericSecondMomentOptimizer.TorchAdam(ps, lr: 1e-3);
        using var sgdEager = GenericSecondMomentOptimizer.HeavyBall(ps, 1e-3);
        using var adamEager = GenericSecondMomentOptimizer.TorchAdam(ps, lr: 1e-3);
        sgdEager.FusedCpuKernel = false;
        adamEager.FusedCpuKernel = false;
        var cases = new List<(string, Func<optim.Optimizer?>, Action?)> {
            ("our HeavyBall + our TorchAdam", () => null, () => { sgd.step(); adam.step(); }),
            ("our HeavyBall + our TorchAdam, eager", () => null, () => { sgdEager.step(); adamEager.step(); }),
            ("closed-form graft SGD#Adam, eager", () => Workload.SgdAdamGraft(ps, new GraftOptions { FusedCpuKernel = false }), null),
            ("copy_ of all parameters", () => null, () => { for (int i = 0; i < ps.Count; i++) scratch[i].copy_(ps[i]); }),
            ("built-in Adam", () => optim.Adam(ps, lr: 1e-3), null),
            ("our TorchAdam", () => GenericSecondMomentOptimizer.TorchAdam(ps, lr: 1e-3), null),
            ("our HeavyBall", () => GenericSecondMomentOptimizer.HeavyBall(ps, lr: 1e-3), null),
            ("closed-form graft SGD#Adam (per tensor)", () => Workload.SgdAdamGraft(ps), null),
            ("closed-form graft SGD#Adam (global)", () => Workload.SgdAdamGraft(ps, new GraftOptions { Granularity = GraftGranularity.Global }), null),
            ("closed-form graft SGD#AdaGrad", () => Workload.SgdAdaGradGraft(ps), null),
            ("closed-form graft SGD#AdaGrad, recorded (flush/100)", () => Recorded(ps), null),
            ("built-in SGD (momentum 0.9)", () => optim.SGD(ps, 1e-3, momentum: 0.9), null),
            ("black-box graft of our HeavyBall#TorchAdam", () => Workload.SgdAdamGraft(ps, new GraftOptions { Path = GraftPath.BlackBox }), null),
            ("black-box graft built-in SGD#Adam", () => Workload.BuiltInBlackBox(ps), null),
        };
        foreach (var (name, make, action) in cases) {
            using var opt = make();
            Action step = action ?? (() => opt!.step());
            using (torch.no_grad()) {
                var (total, enqueue) = Workload.Time(step, cuda);
                string busy = "";
                if (cuda) {
                    // Decisive no-sync check: queue ~0.5 s of GPU work first, then time each of three steps. A step that
                    // waits for the GPU takes that long to enqueue; one that never synchronises enqueues in its usual host
                    // time. One step at a time: CUDA's launch queue holds about a thousand kernels, and once it is full
                    // a launch waits for the GPU as a synchronisation would (five steps of a black-box graft, ~200
                    // kernels each, waited ~100 ms per step on the H200 without any synchronising call).
                    using var a = torch.randn(8192, 8192, device: device);
                    torch.cuda.synchronize();
                    var busySw = Stopwatch.StartNew();
                    for (int k = 0; k < 24; k++) a.matmul(a).Dispose();
                    var each = new double[3];
                    for (int i = 0; i < each.Length; i++) {
                        var stepSw = Stopwatch.StartNew();
                        step();
                        each[i] = stepSw.Elapsed.TotalMilliseconds;
                    }
                    torch.cuda.synchronize();
                    double all = busySw.Elapsed.TotalMilliseconds;
                    busy = $"   while GPU busy ({all:F0} ms queued): {string.Join(" ", each.Select(x => $"{x,6:F2}"))} ms per step enqueue";
                }
                Console.WriteLine($"{name,-42} {total,9:F3} ms/step synchronised   {enqueue,9:F3} ms/step enqueue{busy}");
            }
        }
    }
}
