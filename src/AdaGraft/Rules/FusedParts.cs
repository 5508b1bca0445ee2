using System.Numerics;
using System.Runtime.CompilerServices;

namespace AdaGraft.Rules;

/// <summary>A rule's SIMD kernel built from the host constants of one step (see <see cref="FusedParts.Chunk"/>).</summary>
internal interface IPlanKernel<TPlan, TSelf>
{
    /// <summary>The kernel of the step whose constants are <paramref name="plan"/>.</summary>
    static abstract TSelf Create(in TPlan plan);
}

/// <summary>
/// The pieces the zoo rules' fused kernels share, written once: the dispatch of a chunk to the float32 or float64
/// kernel, the effective gradient (<see cref="FusedGradient{T}"/>) and exponential averages (<see cref="FusedAverage{T}"/>).
/// Each computes, vector by vector, the same operations in the same order as the eager path (<see cref="RuleSteps"/>).
/// </summary>
internal static class FusedParts
{
    /// <summary>
    /// A rule's fused step over elements [start, end) of one tensor: <typeparamref name="TSingle"/> for float32 tensors,
    /// <typeparamref name="TDouble"/> for float64, each built from <paramref name="plan"/>.
    /// </summary>
    internal static void Chunk<TPlan, TSingle, TDouble>(in TPlan plan, in FusedPointers at, long start, long end)
        where TSingle : struct, IVectorKernel<float>, IPlanKernel<TPlan, TSingle>
        where TDouble : struct, IVectorKernel<double>, IPlanKernel<TPlan, TDouble>
    {
        if (at.Single) FusedRules.Sweep<float, TSingle>(TSingle.Create(plan), at, start, end);
        else FusedRules.Sweep<double, TDouble>(TDouble.Create(plan), at, start, end);
    }
}

/// <summary>The effective gradient of a fused kernel, <c>±g + λ·w</c>, as <see cref="RuleSteps.Gradient"/> computes it.</summary>
internal readonly unsafe struct FusedGradient<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    private readonly Vector<T> _wd;
    private readonly bool _decay, _maximize;

    /// <summary>The gradient with L2 decay <paramref name="weightDecay"/>, negated first when <paramref name="maximize"/>.</summary>
    public FusedGradient(double weightDecay, bool maximize = false)
    {
        _wd = FusedRules.V<T>(weightDecay);
        _decay = weightDecay != 0;
        _maximize = maximize;
    }

    /// <summary>Loads the weights (<paramref name="wi"/>) and the gradient at element <paramref name="i"/>; returns the effective gradient.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public Vector<T> Load(T* w, T* g, long i, out Vector<T> wi)
    {
        wi = FusedRules.Load(w, i);
        var gi = FusedRules.Load(g, i);
        if (_maximize) gi = -gi;
        if (_decay) gi += wi * _wd;
        return gi;
    }
}

/// <summary>An exponential average's coefficients as vectors: <c>x ← β·x + (1−β)·y</c>.</summary>
internal readonly struct FusedAverage<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    private readonly Vector<T> _beta, _rest;

    /// <summary>The average with decay <paramref name="beta"/>.</summary>
    public FusedAverage(double beta)
    {
        _beta = FusedRules.V<T>(beta);
        _rest = FusedRules.V<T>(1 - beta);
    }

    /// <summary>The average after <paramref name="x"/> took in <paramref name="y"/>: <c>β·x + (1−β)·y</c>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public Vector<T> Next(Vector<T> x, Vector<T> y) => x * _beta + _rest * y;
}

/// <summary>
/// The division by a root in a fused kernel: <c>x / (root + ε)</c>, or for ε = 0 the pseudoinverse (0 where the root is
/// 0), the vector form of <see cref="RuleSteps.OverRoot"/>.
/// </summary>
internal readonly struct FusedRoot<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    private readonly Vector<T> _eps;
    private readonly bool _pseudoInverse;

    /// <summary>The division with <paramref name="eps"/> added to the root (0: the pseudoinverse).</summary>
    public FusedRoot(double eps)
    {
        _eps = FusedRules.V<T>(eps);
        _pseudoInverse = eps == 0;
    }

    /// <summary><c>x / (root + ε)</c>, or <c>x · root⁺</c> for ε = 0.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public Vector<T> Divide(Vector<T> x, Vector<T> root) => _pseudoInverse ? x * FusedRules.PseudoInverse(root) : x / (root + _eps);
}

/// <summary>
/// Adam's two averages in a fused kernel (slots s0 = m and s1 = v), after the effective gradient with L2 decay: the
/// vector form of <see cref="RuleSteps.Gradient"/> followed by <see cref="RuleSteps.UpdateMoments"/>.
/// </summary>
internal readonly unsafe struct FusedMoments<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    private readonly FusedGradient<T> _gradient;
    private readonly FusedAverage<T> _m, _v;

    /// <summary>The averages with decays <paramref name="beta1"/> and <paramref name="beta2"/> of the gradient with L2 decay <paramref name="weightDecay"/>.</summary>
    public FusedMoments(double weightDecay, double beta1, double beta2)
    {
        _gradient = new(weightDecay);
        _m = new(beta1);
        _v = new(beta2);
    }

    /// <summary>
    /// Updates and stores m and v at element <paramref name="i"/>; returns the effective gradient, with the weights in
    /// <paramref name="wi"/> and the new averages in <paramref name="m"/> and <paramref name="v"/>.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public Vector<T> Update(T* w, T* g, T* s0, T* s1, long i, out Vector<T> wi, out Vector<T> m, out Vector<T> v)
    {
        var gi = _gradient.Load(w, g, i, out wi);
        m = _m.Next(FusedRules.Load(s0, i), gi);
        v = _v.Next(FusedRules.Load(s1, i), gi * gi);
        FusedRules.Store(s0, i, m);
        FusedRules.Store(s1, i, v);
        return gi;
    }
}
