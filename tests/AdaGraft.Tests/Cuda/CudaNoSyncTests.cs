using AdaGraft.Diagnostics;
using AdaGraft.Tests.Support;

namespace AdaGraft.Tests.Cuda;

/// <summary>
/// No step blocks the host on the GPU: after three warm-up steps (slots are created, first-step work done), three more
/// steps of every optimizer of the table and every graft path run under libtorch's synchronisation detector in error
/// mode (<see cref="CudaSyncDebug"/>), where any blocking copy, <c>.item()</c> or synchronise raises at the managed call
/// that made it. Shampoo and SOAP synchronise on the steps that compute roots or refresh their bases (documented); here
/// they refresh every 100 steps, so the checked steps are ordinary ones. Skipped where CUDA is not available.
/// </summary>
public class CudaNoSyncTests
{
    private static readonly string[] Synchronising = { "shampoo", "shampoo-blocked-adam-momentum", "soap", "soap-precondition-1d" };

    public static TheoryData<string> Cases()
    {
        var data = new TheoryData<string>();
        foreach (var e in OptimizerTable.All.Where(e => !Synchronising.Contains(e.Name))) data.Add(e.Name);
        foreach (var name in CudaTests.Configs.Select(row => (string)row.Data).Where(n => n.StartsWith("graft-", StringComparison.Ordinal))) data.Add(name);
        data.Add("shampoo-roots-every-100");
        data.Add("soap-1d-refresh-every-100");
        data.Add("graft-sgd#adagrad-recorded");
        data.Add("graft-sgd#adam-skip-non-finite");
        data.Add("graft-builtin-sgd#adam-global-blackbox");
        data.Add("graft-sgd#adam-reduced-per-tensor");
        data.Add("graft-sgd#adam-reduced-global");
        return data;
    }

    private static optim.Optimizer Make(string name, IList<Parameter> ps) => name switch {
        "shampoo-roots-every-100" => ShampooOptimizer.Create(ps, lr: 0.01, beta1: 0.9, momentum: 0.5, precondition_frequency: 100,
            grafting: AdaGraft.Rules.ShampooGrafting.Adam, grafting_epsilon: 1e-8),
        "soap-1d-refresh-every-100" => SoapOptimizer.Create(ps, lr: 0.01, precondition_frequency: 100, precondition_1d: true),
        "graft-sgd#adagrad-recorded" => Recorded(ps),
        "graft-sgd#adam-skip-non-finite" => new GraftOptimizer(GenericSecondMomentOptimizer.HeavyBall(ps, 0.02), GenericSecondMomentOptimizer.Adam(ps, 1),
            new GraftOptions { OwnsChildren = true }) { SkipNonFiniteSteps = true },
        "graft-builtin-sgd#adam-global-blackbox" => new GraftOptimizer(optim.SGD(ps, 0.02, momentum: 0.9), optim.Adam(ps, lr: 1),
            new GraftOptions { Granularity = GraftGranularity.Global, Path = GraftPath.BlackBox, OwnsChildren = true }),
        // A sharded graft's reduction hook (here doubling, as an all-reduce over two identical shards would).
        "graft-sgd#adam-reduced-per-tensor" or "graft-sgd#adam-reduced-global" => new GraftOptimizer(GenericSecondMomentOptimizer.HeavyBall(ps, 0.02),
            GenericSecondMomentOptimizer.Adam(ps, 1), new GraftOptions {
                Granularity = name.EndsWith("global", StringComparison.Ordinal) ? GraftGranularity.Global : GraftGranularity.PerTensor,
                ReduceSquaredNorms = t => t.mul_(2),
                OwnsChildren = true,
            }),
        _ when name.StartsWith("graft-", StringComparison.Ordinal) => CudaTests.Make(name, ps),
        _ => OptimizerTable.Make(name, ps),
    };

    private static GraftOptimizer Recorded(IList<Parameter> ps)
    {
        var graft = new GraftOptimizer(GenericSecondMomentOptimizer.HeavyBall(ps, 0.02), GenericSecondMomentOptimizer.AdaGrad(ps, 1), new GraftOptions { OwnsChildren = true });
        // The recorder lives as long as the graft (it listens to its Stepped event) and flushes every 100 steps only.
        _ = new StepNormRecorder(graft, new RecorderOptions { FlushEvery = 100 });
        return graft;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void StepDoesNotSynchronise(string name)
    {
        Assert.SkipUnless(torch.cuda.is_available(), "CUDA is not available on this machine.");
        Assert.SkipUnless(CudaSyncDebug.Available(out string why), why);
        var ps = Fixtures.CudaCopies(Fixtures.MakeParameters(Fixtures.Shapes, ScalarType.Float32));
        using var opt = Make(name, ps);
        for (int step = 0; step < 6; step++) {
            // The gradients are drawn on the CPU and copied (a blocking copy): outside the detector.
            Fixtures.SetGradients(ps, step);
            torch.cuda.synchronize();
            if (step < 3) {
                opt.step();
                continue;
            }
            Exception? raised = null;
            using (CudaSyncDebug.RaiseOnSync()) {
                try {
                    opt.step();
                } catch (Exception e) {
                    raised = e;
                }
            }
            raised.Should().BeNull($"step {step} of {name} must not block the host, but it synchronised: {raised}");
        }
        torch.cuda.synchronize();
        foreach (var p in ps) p.detach().isfinite().all().item<bool>().Should().BeTrue();
    }

    /// <summary>The detector itself: a blocking read raises under it, and nothing does once it is off.</summary>
    [Fact]
    public void DetectorRaisesOnABlockingRead()
    {
        Assert.SkipUnless(torch.cuda.is_available(), "CUDA is not available on this machine.");
        Assert.SkipUnless(CudaSyncDebug.Available(out string why), why);
        using var x = torch.ones(4, device: torch.CUDA);
        using (CudaSyncDebug.RaiseOnSync()) {
            var read = () => x.sum().item<float>();
            read.Should().Throw<Exception>().Which.Message.Should().Contain("synchroniz");
        }
        x.sum().item<float>().Should().Be(4);
    }
}
