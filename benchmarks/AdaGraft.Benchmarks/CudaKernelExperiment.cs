using System.IO;
using System.Reflection;
using System.Runtime.InteropServices;
using System.Text;

namespace AdaGraft.Benchmarks;

/// <summary>
/// Experiment for the CUDA target (not library code): the closed-form SGD#Adam graft (heavy ball gives the norm,
/// TorchAdam the direction, per tensor) as two CUDA kernels per tensor, compiled at run time with NVRTC and launched
/// through the CUDA driver API on the default stream that libtorch uses — the GPU form of the fused CPU path's two
/// passes. Pass 1 advances both states, writes Adam's direction u to a buffer shared by all tensors and writes each
/// block's Σ m² and Σ u² (float64) to a partials buffer; pass 2 reduces the partials (every block, in the same
/// order), computes the ratio on the device and applies w ← w − lr·‖m‖/‖u‖·u. Nothing is read back to the host.
/// It is first checked against <see cref="GraftOptimizer"/> (three steps on identical data), then timed like
/// <c>--device-timing</c>. Run with <c>--cuda-kernel-experiment [elements-per-tensor]</c>; NVRTC is looked for in
/// <c>ADAGRAFT_NVRTC</c> (a path), then under the usual names.
/// </summary>
/// <remarks>
/// With D's learning rate 1 and per-tensor grafting, Adam's bias-correction scale cancels in the ratio and its ε
/// becomes ε·√(1 − β2^t) (as in <c>--flat-experiment</c>). Memory traffic per element: g, m, m1, m2 read; m, m1, m2
/// written; u written and read back (from L2 when a tensor's u fits); w read and written: 9 to 11 × 4 bytes, against
/// ≈ 12 passes of eager TorchSharp.
/// </remarks>
internal static unsafe class CudaKernelExperiment
{
    private const int Segments = 10;
    private const double Lr = 1e-3, Beta1 = 0.9, Beta2 = 0.999, Eps = 1e-8, Momentum = 0.9;
    private const int Threads = 256;

    internal const string Source = """
// Sums two shared arrays of blockDim.x doubles into their element 0, in a fixed order.
__device__ void block_sum2(double* s0, double* s1)
{
    __syncthreads();
    for (unsigned int s = blockDim.x / 2; s > 0; s >>= 1) {
        if (threadIdx.x < s) {
            s0[threadIdx.x] += s0[threadIdx.x + s];
            s1[threadIdx.x] += s1[threadIdx.x + s];
        }
        __syncthreads();
    }
}

extern "C" __global__ void graft_propose(const float* __restrict__ g, float* __restrict__ mm, float* __restrict__ m1,
    float* __restrict__ m2, float* __restrict__ u, double* __restrict__ partial, long long n,
    float mu, float b1, float c1, float b2, float c2, float eps)
{
    float sm = 0.0f, su = 0.0f;
    const long long stride = (long long)gridDim.x * blockDim.x;
    const long long first = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    const long long n4 = n / 4;
    const float4* g4 = reinterpret_cast<const float4*>(g);
    float4* mm4 = reinterpret_cast<float4*>(mm);
    float4* a4 = reinterpret_cast<float4*>(m1);
    float4* v4 = reinterpret_cast<float4*>(m2);
    float4* u4 = reinterpret_cast<float4*>(u);
    for (long long i = first; i < n4; i += stride) {
        const float4 gi = g4[i];
        float4 m = mm4[i], a = a4[i], v = v4[i], d;
#define GRAFT_LANE(x) \
        m.x = mu * m.x + gi.x; \
        a.x = b1 * a.x + c1 * gi.x; \
        v.x = b2 * v.x + c2 * (gi.x * gi.x); \
        d.x = a.x / (sqrtf(v.x) + eps); \
        sm += m.x * m.x; \
        su += d.x * d.x;
        GRAFT_LANE(x) GRAFT_LANE(y) GRAFT_LANE(z) GRAFT_LANE(w)
#undef GRAFT_LANE
        mm4[i] = m;
        a4[i] = a;
        v4[i] = v;
        u4[i] = d;
    }
    for (long long i = 4 * n4 + first; i < n; i += stride) {
        const float gi = g[i];
        const float m = mu * mm[i] + gi;
        const float a = b1 * m1[i] + c1 * gi;
        const float v = b2 * m2[i] + c2 * (gi * gi);
        const float d = a / (sqrtf(v) + eps);
        mm[i] = m;
        m1[i] = a;
        m2[i] = v;
        u[i] = d;
        sm += m * m;
        su += d * d;
    }
    __shared__ double s0[256];
    __shared__ double s1[256];
    s0[threadIdx.x] = sm;
    s1[threadIdx.x] = su;
    block_sum2(s0, s1);
    if (threadIdx.x == 0) {
        partial[2 * blockIdx.x] = s0[0];
        partial[2 * blockIdx.x + 1] = s1[0];
    }
}

extern "C" __global__ void graft_apply(float* __restrict__ w, const float* __restrict__ u,
    const double* __restrict__ partial, int parts, float lr, float* __restrict__ ratio, long long n)
{
    __shared__ double s0[256];
    __shared__ double s1[256];
    __shared__ float r;
    double a = 0.0, b = 0.0;
    for (int k = threadIdx.x; k < parts; k += blockDim.x) {
        a += partial[2 * k];
        b += partial[2 * k + 1];
    }
    s0[threadIdx.x] = a;
    s1[threadIdx.x] = b;
    block_sum2(s0, s1);
    if (threadIdx.x == 0) {
        const double nu = sqrt(s1[0]);
        r = nu > 0.0 ? (float)(lr * sqrt(s0[0]) / nu) : 0.0f;
        if (blockIdx.x == 0) ratio[0] = r;
    }
    __syncthreads();
    const float rv = r;
    const long long stride = (long long)gridDim.x * blockDim.x;
    const long long first = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    const long long n4 = n / 4;
    float4* w4 = reinterpret_cast<float4*>(w);
    const float4* u4 = reinterpret_cast<const float4*>(u);
    for (long long i = first; i < n4; i += stride) {
        float4 x = w4[i];
        const float4 d = u4[i];
        x.x -= rv * d.x;
        x.y -= rv * d.y;
        x.z -= rv * d.z;
        x.w -= rv * d.w;
        w4[i] = x;
    }
    for (long long i = 4 * n4 + first; i < n; i += stride) w[i] -= rv * u[i];
}
""";

    // CUDA driver API (libcuda.so.1, installed with the driver) and NVRTC, bound at run time.
    private static IntPtr _cuda, _nvrtc;

    private static IntPtr Fn(IntPtr lib, string name) => NativeLibrary.GetExport(lib, name);

    private static void Check(int result, string what)
    {
        if (result == 0) return;
        string text = "";
        try {
            var getString = Fn(_cuda, "cuGetErrorString");
            byte* s = null;
            ((delegate* unmanaged<int, byte**, int>)getString)(result, &s);
            if (s != null) text = Marshal.PtrToStringUTF8((IntPtr)s) ?? "";
        } catch (EntryPointNotFoundException) {
        }
        throw new InvalidOperationException($"{what} failed: CUresult {result} {text}");
    }

    private static IntPtr LoadNvrtc()
    {
        var candidates = new List<string>();
        var env = Environment.GetEnvironmentVariable("ADAGRAFT_NVRTC");
        if (!string.IsNullOrEmpty(env)) candidates.Add(env);
        candidates.AddRange(new[] { "libnvrtc.so.13", "libnvrtc.so.12", "libnvrtc.so" });
        foreach (var c in candidates)
            if (NativeLibrary.TryLoad(c, out var h)) {
                Console.WriteLine($"NVRTC: {c}");
                return h;
            }
        throw new DllNotFoundException($"NVRTC not found (tried {string.Join(", ", candidates)}); set ADAGRAFT_NVRTC to its path.");
    }

    /// <summary>Compiles <see cref="Source"/> to PTX for compute capability <paramref name="major"/>.<paramref name="minor"/>.</summary>
    private static byte[] Compile(int major, int minor)
    {
        var create = (delegate* unmanaged<IntPtr*, byte*, byte*, int, byte**, byte**, int>)Fn(_nvrtc, "nvrtcCreateProgram");
        var compile = (delegate* unmanaged<IntPtr, int, byte**, int>)Fn(_nvrtc, "nvrtcCompileProgram");
        var logSize = (delegate* unmanaged<IntPtr, nuint*, int>)Fn(_nvrtc, "nvrtcGetProgramLogSize");
        var getLog = (delegate* unmanaged<IntPtr, byte*, int>)Fn(_nvrtc, "nvrtcGetProgramLog");
        var ptxSize = (delegate* unmanaged<IntPtr, nuint*, int>)Fn(_nvrtc, "nvrtcGetPTXSize");
        var getPtx = (delegate* unmanaged<IntPtr, byte*, int>)Fn(_nvrtc, "nvrtcGetPTX");
        var destroy = (delegate* unmanaged<IntPtr*, int>)Fn(_nvrtc, "nvrtcDestroyProgram");
        byte[] src = Encoding.UTF8.GetBytes(Source + "\0");
        byte[] name = Encoding.UTF8.GetBytes("graft.cu\0");
        byte[][] options = {
            Encoding.UTF8.GetBytes($"--gpu-architecture=compute_{major}{minor}\0"),
            Encoding.UTF8.GetBytes("--std=c++17\0"),
        };
        IntPtr prog;
        fixed (byte* s = src, n = name) {
            int rc = create(&prog, s, n, 0, null, null);
            if (rc != 0) throw new InvalidOperationException($"nvrtcCreateProgram failed: {rc}");
        }
        try {
            int compiled;
            fixed (byte* o0 = options[0], o1 = options[1]) {
                byte** opts = stackalloc byte*[2];
                opts[0] = o0;
                opts[1] = o1;
                compiled = compile(prog, 2, opts);
            }
            nuint size;
            logSize(prog, &size);
            if (size > 1) {
                var log = new byte[(int)size];
                fixed (byte* l = log) getLog(prog, l);
                Console.WriteLine("NVRTC log: " + Encoding.UTF8.GetString(log, 0, log.Length - 1));
            }
            if (compiled != 0) throw new InvalidOperationException($"nvrtcCompileProgram failed: {compiled}");
            ptxSize(prog, &size);
            var ptx = new byte[(int)size];
            fixed (byte* p = ptx) getPtx(prog, p);
            return ptx;
        } finally {
            destroy(&prog);
        }
    }

    /// <summary>The device address of a tensor's first element (libtorch's <c>data_ptr()</c>).</summary>
    private static ulong DataPtr(Tensor t)
    {
        var m = typeof(torch).Assembly.GetType("TorchSharp.PInvoke.NativeMethods")!
            .GetMethod("THSTensor_data", BindingFlags.NonPublic | BindingFlags.Static)!;
        return (ulong)(long)(IntPtr)m.Invoke(null, new object[] { t.Handle })!;
    }

    private sealed class Kernels
    {
        public IntPtr Propose, Apply;
        public int Blocks;
        private readonly delegate* unmanaged<IntPtr, uint, uint, uint, uint, uint, uint, uint, IntPtr, void**, void**, int> _launch;

        public Kernels()
        {
            _cuda = NativeLibrary.Load("libcuda.so.1");
            _nvrtc = LoadNvrtc();
            var init = (delegate* unmanaged<uint, int>)Fn(_cuda, "cuInit");
            var deviceGet = (delegate* unmanaged<int*, int, int>)Fn(_cuda, "cuDeviceGet");
            var attribute = (delegate* unmanaged<int*, int, int, int>)Fn(_cuda, "cuDeviceGetAttribute");
            var retain = (delegate* unmanaged<IntPtr*, int, int>)Fn(_cuda, "cuDevicePrimaryCtxRetain");
            var setCurrent = (delegate* unmanaged<IntPtr, int>)Fn(_cuda, "cuCtxSetCurrent");
            var load = (delegate* unmanaged<IntPtr*, byte*, int>)Fn(_cuda, "cuModuleLoadData");
            var getFunction = (delegate* unmanaged<IntPtr*, IntPtr, byte*, int>)Fn(_cuda, "cuModuleGetFunction");
            _launch = (delegate* unmanaged<IntPtr, uint, uint, uint, uint, uint, uint, uint, IntPtr, void**, void**, int>)Fn(_cuda, "cuLaunchKernel");
            Check(init(0), "cuInit");
            int dev, major, minor, sms;
            Check(deviceGet(&dev, 0), "cuDeviceGet");
            Check(attribute(&major, 75, dev), "compute capability major");
            Check(attribute(&minor, 76, dev), "compute capability minor");
            Check(attribute(&sms, 16, dev), "multiprocessor count");
            // libtorch works in the device's primary context; make it current on this thread too.
            IntPtr ctx;
            Check(retain(&ctx, dev), "cuDevicePrimaryCtxRetain");
            Check(setCurrent(ctx), "cuCtxSetCurrent");
            var ptx = Compile(major, minor);
            IntPtr module;
            fixed (byte* p = ptx) Check(load(&module, p), "cuModuleLoadData");
            IntPtr f;
            fixed (byte* name = Encoding.UTF8.GetBytes("graft_propose\0")) Check(getFunction(&f, module, name), "cuModuleGetFunction(graft_propose)");
            Propose = f;
            fixed (byte* name = Encoding.UTF8.GetBytes("graft_apply\0")) Check(getFunction(&f, module, name), "cuModuleGetFunction(graft_apply)");
            Apply = f;
            Blocks = 4 * sms;
            Console.WriteLine($"compute capability {major}.{minor}, {sms} SMs, {Blocks} blocks of {Threads} threads per kernel");
        }

        public void Launch(IntPtr f, long n, void** args)
        {
            long need = (n / 4 + Threads - 1) / Threads;
            uint grid = (uint)Math.Clamp(need, 1, Blocks);
            // Stream 0: the legacy default stream, the one libtorch's operations run on unless a stream is set.
            Check(_launch(f, grid, 1, 1, Threads, 1, 1, 0, IntPtr.Zero, args, null), "cuLaunchKernel");
        }
    }

    /// <summary>Ten separate tensors (as a model has them) with the graft's state, stepped by the two kernels.</summary>
    private sealed class State : SegmentedGraftTensors
    {
        public readonly Tensor U, Partial, Ratios;
        public readonly ulong[] PW, PG, PMm, PM1, PM2;
        public readonly ulong PU, PPartial, PRatios;

        public readonly bool Global;

        /// <param name="global">One ratio for all tensors: u is kept per tensor and every tensor's partials are kept.</param>
        public State(Tensor w, Tensor g, long elements, int blocks, bool global) : base(w, g, Segments, elements)
        {
            Global = global;
            U = torch.empty(global ? Segments * elements : elements, device: w.device);
            Partial = torch.zeros(2 * blocks * Segments, ScalarType.Float64, device: w.device);
            Ratios = torch.zeros(Segments, device: w.device);
            // Device addresses, read once (the tensors never move).
            PW = W.Select(DataPtr).ToArray();
            PG = G.Select(DataPtr).ToArray();
            PMm = Mm.Select(DataPtr).ToArray();
            PM1 = M1.Select(DataPtr).ToArray();
            PM2 = M2.Select(DataPtr).ToArray();
            PU = DataPtr(U);
            PPartial = DataPtr(Partial);
            PRatios = DataPtr(Ratios);
        }

        protected override IEnumerable<Tensor> Owned => base.Owned.Append(U).Append(Partial).Append(Ratios);
    }

    private static void Step(Kernels k, State s, long elements)
    {
        s.T++;
        float mu = (float)Momentum, b1 = (float)Beta1, c1 = (float)(1 - Beta1), b2 = (float)Beta2, c2 = (float)(1 - Beta2);
        float eps = (float)(Eps * Math.Sqrt(1 - Math.Pow(Beta2, s.T))), lr = (float)Lr;
        long n = elements;
        int parts = (int)Math.Clamp((n / 4 + Threads - 1) / Threads, 1, k.Blocks);
        // Per tensor: one u and one partials slot, reused tensor after tensor. Global: each tensor's own u and
        // partials, and every apply reduces all tensors' partials.
        int applyParts = s.Global ? parts * Segments : parts;
        ulong u = 0, partial = 0, w = 0, g = 0, mm = 0, m1 = 0, m2 = 0, ratio = 0;
        void** a = stackalloc void*[13];
        a[0] = &g;
        a[1] = &mm;
        a[2] = &m1;
        a[3] = &m2;
        a[4] = &u;
        a[5] = &partial;
        a[6] = &n;
        a[7] = &mu;
        a[8] = &b1;
        a[9] = &c1;
        a[10] = &b2;
        a[11] = &c2;
        a[12] = &eps;
        void** b = stackalloc void*[7];
        b[0] = &w;
        b[1] = &u;
        b[2] = &partial;
        b[3] = &applyParts;
        b[4] = &lr;
        b[5] = &ratio;
        b[6] = &n;
        // Per tensor: propose i, apply i. Global: every propose, then every apply.
        for (int pass = 0; pass < (s.Global ? 2 : 1); pass++) {
            for (int i = 0; i < Segments; i++) {
                u = s.Global ? s.PU + (ulong)(4 * elements * i) : s.PU;
                if (!s.Global || pass == 0) {
                    (g, mm, m1, m2) = (s.PG[i], s.PMm[i], s.PM1[i], s.PM2[i]);
                    partial = s.Global ? s.PPartial + (ulong)(16 * parts * i) : s.PPartial;
                    k.Launch(k.Propose, n, a);
                }
                if (!s.Global || pass == 1) {
                    w = s.PW[i];
                    partial = s.PPartial;
                    ratio = s.PRatios + (ulong)(4 * i);
                    k.Launch(k.Apply, n, b);
                }
            }
        }
    }

    public static void Run(long elements)
    {
        if (!torch.cuda.is_available()) {
            // What can be checked without a GPU: the data_ptr binding (it must give a view's first element).
            using var t = torch.arange(16, dtype: ScalarType.Float32);
            using var view = t.narrow(0, 3, 8);
            bool same = DataPtr(view) == (ulong)(long)AdaGraft.Rules.FusedCpu.Pointer(view);
            Console.WriteLine($"CUDA is not available; this experiment needs a GPU. data_ptr binding on CPU: {(same ? "ok" : "WRONG")}");
            return;
        }
        if (elements % 4 != 0) throw new ArgumentException("elements per tensor must be a multiple of 4 (float4 loads).", nameof(elements));
        var device = torch.device("cuda");
        torch.manual_seed(1);
        using var w0 = torch.randn(Segments * elements, device: device);
        using var g0 = torch.randn(Segments * elements, device: device);
        torch.cuda.synchronize();
        var k = new Kernels();
        Console.WriteLine($"{Segments} x {elements:N0} float32 tensors, SGD#Adam in two NVRTC kernels per tensor");

        foreach (bool global in new[] { false, true }) {
            // 1. The same numbers as GraftOptimizer (three steps, fixed gradient).
            string name = global ? "global" : "per tensor";
            using (torch.no_grad()) {
                var ps = Enumerable.Range(0, Segments).Select(i => new Parameter(w0.narrow(0, i * elements, elements).clone())).ToList();
                foreach (var (p, i) in ps.Select((p, i) => (p, i))) p.grad = g0.narrow(0, i * elements, elements).clone();
                using var graft = new GraftOptimizer(GenericSecondMomentOptimizer.HeavyBall(ps, Lr, Momentum),
                    GenericSecondMomentOptimizer.TorchAdam(ps, lr: 1, beta1: Beta1, beta2: Beta2, eps: Eps),
                    new GraftOptions { OwnsChildren = true, Granularity = global ? GraftGranularity.Global : GraftGranularity.PerTensor });
                using var s = new State(w0, g0, elements, k.Blocks, global);
                for (int step = 0; step < 3; step++) {
                    graft.step();
                    Step(k, s, elements);
                }
                torch.cuda.synchronize();
                using var reference = torch.cat(ps.Select(p => (Tensor)p).ToArray(), 0);
                using var ours = torch.cat(s.W, 0);
                using var moved = (reference - w0).abs().max();
                using var diff = (ours - reference).abs().max();
                using var rel = diff / moved;
                // GraftOptimizer's ratio is ‖ΔM‖/‖ΔD‖ with ΔD = −c·u, c = √(1 − β2^t)/(1 − β1^t) (D's lr 1); the kernels' is lr·‖m‖/‖u‖.
                double c = Math.Sqrt(1 - Math.Pow(Beta2, 3)) / (1 - Math.Pow(Beta1, 3));
                using var refRatio = (global ? graft.LastNorms!.GlobalRatio : graft.LastNorms!.Ratio[0]!).to(ScalarType.Float64).cpu();
                using var ourRatio = s.Ratios.to(ScalarType.Float64).cpu();
                Console.WriteLine($"{name}: after 3 steps max |w − w0| = {moved.item<float>():E3}; max |kernels − GraftOptimizer| = {diff.item<float>():E3} ({rel.item<float>():E2} of the move)");
                Console.WriteLine($"{name}: tensor 0's ratio at step 3: GraftOptimizer × c {refRatio.item<double>() * c:E6}, kernels {ourRatio[0].item<double>():E6}");
                foreach (var p in ps) p.Dispose();
            }

            // 2. Timing, as --device-timing: 5 warm-up steps, then 30, synchronised and enqueue-only.
            using (torch.no_grad()) {
                using var s = new State(w0, g0, elements, k.Blocks, global);
                var (total, enqueue) = Workload.Time(() => Step(k, s, elements), cuda: true);
                Console.WriteLine($"{"NVRTC kernels, " + name,-42} {total,9:F3} ms/step synchronised   {enqueue,9:F3} ms/step enqueue");
            }
        }
    }
}
