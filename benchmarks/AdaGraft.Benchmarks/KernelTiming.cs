using System;
using System.Diagnostics;
using AdaGraft.Rules;
using TorchSharp;
using static TorchSharp.torch;

namespace AdaGraft.Benchmarks;

/// <summary>
/// Development aid (not a benchmark result): single-threaded times of the fused CPU kernels on one tensor, to see
/// where a fused step spends its time. Run with <c>--kernel-timing [elements]</c>.
/// </summary>
internal static class KernelTiming
{
    public static void Run(long n)
    {
        torch.manual_seed(1);
        using var w = torch.randn(n);
        using var g = torch.randn(n);
        using var mM = torch.zeros(n);
        using var m1 = torch.zeros(n);
        using var m2 = torch.zeros(n);
        using var o = torch.empty(n);
        var hb = new FusedPlan { HasM1 = true, Beta1 = 0.9, C1 = 1, Scale = -1e-3, M1 = FusedCpu.Pointer(mM) };
        var adam = new FusedPlan {
            HasM1 = true,
            Beta1 = 0.9,
            C1 = 0.1,
            Preconditioned = true,
            Beta2 = 0.999,
            C2 = 0.001,
            EpsTerm = 1e-8,
            Scale = -1e-3,
            M1 = FusedCpu.Pointer(m1),
            M2 = FusedCpu.Pointer(m2),
        };
        IntPtr pw = FusedCpu.Pointer(w), pg = FusedCpu.Pointer(g), po = FusedCpu.Pointer(o);
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
}
