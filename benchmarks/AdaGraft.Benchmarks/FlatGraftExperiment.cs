namespace AdaGraft.Benchmarks;

/// <summary>
/// Experiment for the CUDA target (not library code): SGD#Adam grafted per tensor over flat buffers that hold all
/// ten tensors end to end (so each operation is one kernel for all tensors, and per-tensor norms are one reduction over
/// a [10, N] view), written (a) as eager TorchSharp calls and (b) as one TorchScript function (<c>torch.jit.compile</c>),
/// whose profiling executor may fuse the out-of-place elementwise chain; and (c) over ten separate tensors as one
/// TorchScript call that loops over them in C++ (no per-operation .NET call). All are first checked against
/// <see cref="GraftOptimizer"/> (HeavyBall#TorchAdam, per tensor) on identical data, then timed like
/// <c>--device-timing</c>. Run with <c>--flat-experiment [cuda|cpu] [elements-per-tensor]</c>.
/// </summary>
/// <remarks>
/// With D's learning rate 1 and per-tensor grafting, w ← w − lr·‖m‖/‖u‖·u where m is heavy ball's buffer and
/// u = m1/(√m2 + ε·√(1−β2^t)) is Adam's direction: Adam's bias-correction scale cancels in the ratio.
/// </remarks>
internal static class FlatGraftExperiment
{
    private const int Segments = 10;
    private const double Lr = 1e-3, Beta1 = 0.9, Beta2 = 0.999, Eps = 1e-8, Momentum = 0.9;

    private const string Script = """
def graft_step(w: Tensor, g: Tensor, mm: Tensor, m1: Tensor, m2: Tensor, lr: float, b1: float, b2: float, e: float, nseg: int) -> Tensor:
    mm.mul_(0.9).add_(g)
    m1.mul_(b1).add_(g, alpha=1.0 - b1)
    m2.mul_(b2).addcmul_(g, g, value=1.0 - b2)
    u = m1 / (torch.sqrt(m2) + e)
    mv = mm.view(nseg, -1)
    uv = u.view(nseg, -1)
    nm = torch.sqrt((mv * mv).sum(1))
    nu = torch.sqrt((uv * uv).sum(1))
    r = torch.where(nu > 0.0, nm / nu, torch.zeros_like(nu)) * lr
    w.view(nseg, -1).sub_(uv * r.unsqueeze(1))
    return r

def graft_step_list(ws: List[Tensor], gs: List[Tensor], mms: List[Tensor], m1s: List[Tensor], m2s: List[Tensor], lr: float, b1: float, b2: float, e: float) -> Tensor:
    rs: List[Tensor] = []
    for i in range(len(ws)):
        g = gs[i]
        mm = mms[i].mul_(0.9).add_(g)
        m1 = m1s[i].mul_(b1).add_(g, alpha=1.0 - b1)
        m2 = m2s[i].mul_(b2).addcmul_(g, g, value=1.0 - b2)
        u = m1 / (torch.sqrt(m2) + e)
        nm = torch.sqrt((mm * mm).sum())
        nu = torch.sqrt((u * u).sum())
        r = torch.where(nu > 0.0, nm / nu, torch.zeros_like(nu)) * lr
        ws[i].sub_(u * r)
        rs.append(r)
    return torch.stack(rs)
""" + "\n";

    private sealed class Flat : IDisposable
    {
        public readonly Tensor W, G, Mm, M1, M2, Scratch;
        public long T;

        public Flat(Tensor w, Tensor g)
        {
            W = w.clone();
            G = g.clone();
            Mm = torch.zeros_like(w);
            M1 = torch.zeros_like(w);
            M2 = torch.zeros_like(w);
            Scratch = torch.empty_like(w);
        }

        public double EpsTerm() => Eps * Math.Sqrt(1 - Math.Pow(Beta2, T));

        public void Dispose()
        {
            foreach (var t in new[] { W, G, Mm, M1, M2, Scratch }) t.Dispose();
        }
    }

    private static void EagerStep(Flat f)
    {
        using var scope = torch.NewDisposeScope();
        f.T++;
        f.Mm.mul_(Momentum).add_(f.G);
        f.M1.mul_(Beta1).add_(f.G, 1 - Beta1);
        f.M2.mul_(Beta2).addcmul_(f.G, f.G, 1 - Beta2);
        var u = f.Scratch.copy_(f.M2).sqrt_().add_(f.EpsTerm()).reciprocal_().mul_(f.M1);
        var nm = f.Mm.view(Segments, -1).norm(1);
        var nu = u.view(Segments, -1).norm(1);
        var r = torch.where(nu > 0, nm / nu, torch.zeros_like(nu)).mul_(Lr);
        f.W.view(Segments, -1).addcmul_(u.view(Segments, -1), r.unsqueeze(1), -1);
    }

    /// <summary>Separate tensors (as a model has them), one TorchScript call a step looping over them in C++.</summary>
    private sealed class Listed(Tensor w, Tensor g, long elements) : SegmentedGraftTensors(w, g, Segments, elements);

    private static void ListStep(jit.CompilationUnit cu, Listed l)
    {
        l.T++;
        double e = Eps * Math.Sqrt(1 - Math.Pow(Beta2, l.T));
        using var r = cu.invoke<Tensor>("graft_step_list", l.W, l.G, l.Mm, l.M1, l.M2, Lr, Beta1, Beta2, e);
    }

    private static void ScriptStep(jit.CompilationUnit cu, Flat f)
    {
        f.T++;
        using var r = cu.invoke<Tensor>("graft_step", f.W, f.G, f.Mm, f.M1, f.M2, Lr, Beta1, Beta2, f.EpsTerm(), Segments);
    }

    public static void Run(string deviceName, long elements)
    {
        var device = torch.device(deviceName);
        bool cuda = device.type == DeviceType.CUDA;
        using var cu = jit.compile(Script);
        torch.manual_seed(1);
        using var w0 = torch.randn(Segments * elements, device: device);
        using var g0 = torch.randn(Segments * elements, device: device);
        Console.WriteLine($"device {deviceName}, {Segments} x {elements:N0} float32 in one flat buffer");

        // 1. The same numbers as GraftOptimizer (three steps, fixed gradient).
        using (torch.no_grad()) {
            var ps = Enumerable.Range(0, Segments).Select(i => new Parameter(w0.narrow(0, i * elements, elements).clone())).ToList();
            foreach (var (p, i) in ps.Select((p, i) => (p, i))) p.grad = g0.narrow(0, i * elements, elements).clone();
            using var graft = new GraftOptimizer(GenericSecondMomentOptimizer.HeavyBall(ps, Lr, Momentum),
                GenericSecondMomentOptimizer.TorchAdam(ps, lr: 1, beta1: Beta1, beta2: Beta2, eps: Eps), new GraftOptions { OwnsChildren = true });
            using var eager = new Flat(w0, g0);
            using var script = new Flat(w0, g0);
            using var listed = new Listed(w0, g0, elements);
            for (int s = 0; s < 3; s++) {
                graft.step();
                EagerStep(eager);
                ScriptStep(cu, script);
                ListStep(cu, listed);
            }
            using var reference = torch.cat(ps.Select(p => (Tensor)p).ToArray(), 0);
            using var listedW = torch.cat(listed.W, 0);
            using var moved = (reference - w0).abs().max();
            using var de = (eager.W - reference).abs().max();
            using var ds = (script.W - reference).abs().max();
            using var dl = (listedW - reference).abs().max();
            Console.WriteLine($"after 3 steps: max |w − w0| = {moved.item<float>():E3}; max difference from GraftOptimizer: flat eager {de.item<float>():E3}, flat TorchScript {ds.item<float>():E3}, per-tensor TorchScript {dl.item<float>():E3}");
            foreach (var p in ps) p.Dispose();
        }

        // 2. Timing: 5 warm-up steps (TorchScript's profiling executor specialises and fuses during these), then 30.
        using var flatEager = new Flat(w0, g0);
        using var flatScript = new Flat(w0, g0);
        using var perTensor = new Listed(w0, g0, elements);
        foreach (var (name, step) in new (string, Action)[] {
            ("flat buffers, eager TorchSharp", () => EagerStep(flatEager)),
            ("flat buffers, one TorchScript function", () => ScriptStep(cu, flatScript)),
            ("10 tensors, one TorchScript call looping", () => ListStep(cu, perTensor)),
        }) {
            using var _ = torch.no_grad();
            var (total, enqueue) = Workload.Time(step, cuda);
            Console.WriteLine($"{name,-42} {total,9:F3} ms/step synchronised   {enqueue,9:F3} ms/step enqueue");
        }
    }
}
