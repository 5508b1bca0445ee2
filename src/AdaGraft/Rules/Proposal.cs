namespace AdaGraft.Rules;

/// <summary>
/// A step proposed by an update rule for one tensor, described without being carried out:
/// <c>Δ = Scale · Numerator [⊙ Multiplier | ⊘ Divisor] + ParamDecay · w</c>, where <c>w</c> is the parameter
/// before the step. The new parameter is <c>w + Δ</c>.
/// </summary>
/// <remarks>
/// Keeping the proposal symbolic lets a standalone optimizer apply it in one fused pass
/// (<c>addcdiv_</c> / <c>addcmul_</c>), while grafting materialises it once into a work buffer to take its norm.
/// The tensors are views of the rule's own state or work buffers: they stay valid until the rule's next step.
/// <see cref="Multiplier"/> and <see cref="Divisor"/> must be scratch buffers, never persistent state: applying or
/// materialising a proposal may overwrite them. <see cref="Numerator"/> is only read.
/// </remarks>
public readonly struct Proposal
{
    /// <summary>Creates a proposal.</summary>
    public Proposal(Tensor numerator, double scale, Tensor? multiplier = null, Tensor? divisor = null, double paramDecay = 0)
    {
        if (multiplier is not null && divisor is not null)
            throw new System.ArgumentException("A proposal has a multiplier or a divisor, not both.", nameof(divisor));
        Numerator = numerator;
        Scale = scale;
        Multiplier = multiplier;
        Divisor = divisor;
        ParamDecay = paramDecay;
    }

    /// <summary>The tensor the step is proportional to (a state buffer, a work buffer, or the gradient itself).</summary>
    public Tensor Numerator { get; }

    /// <summary>Elementwise factor, or null.</summary>
    public Tensor? Multiplier { get; }

    /// <summary>Elementwise divisor, or null.</summary>
    public Tensor? Divisor { get; }

    /// <summary>Host-side scale of the step (negative for descent).</summary>
    public double Scale { get; }

    /// <summary>Coefficient of the decoupled weight-decay term <c>ParamDecay · w</c> (0 when none).</summary>
    public double ParamDecay { get; }

    /// <summary>
    /// An optional 0-d device tensor multiplying <see cref="Scale"/> (used when a factor such as Adam's bias correction
    /// depends on a device-side step count); null when the scale is entirely on the host.
    /// </summary>
    public Tensor? ScaleTensor { get; init; }

    /// <summary>True when the proposal moves nothing (zero scale and no decay).</summary>
    public bool IsZero => Scale == 0 && ParamDecay == 0;

    /// <summary>Carries out the step on <paramref name="param"/> in place: <c>w ← w + Δ</c>.</summary>
    public void ApplyTo(Tensor param)
    {
        if (ParamDecay != 0) param.mul_(1 + ParamDecay);
        if (Scale == 0) return;
        if (ScaleTensor is not null) {
            if (Multiplier is not null) param.addcmul_(Numerator, Multiplier.mul_(ScaleTensor), Scale);
            else if (Divisor is not null) param.addcdiv_(Numerator, Divisor.div_(ScaleTensor), Scale);
            else param.addcmul_(Numerator, ScaleTensor, Scale);
            return;
        }
        if (Multiplier is not null) param.addcmul_(Numerator, Multiplier, Scale);
        else if (Divisor is not null) param.addcdiv_(Numerator, Divisor, Scale);
        else param.add_(Numerator, Scale);
    }

    /// <summary>
    /// Writes the step's shape into a tensor <c>u</c> with <c>Δ = factor · u</c> and returns <c>u</c>.
    /// <c>u</c> is either <see cref="Numerator"/> itself (nothing written) or <paramref name="work"/>.
    /// </summary>
    /// <param name="param">The parameter before the step (needed only for decoupled decay).</param>
    /// <param name="work">A buffer shaped like the parameter that may be overwritten; it may be
    /// <see cref="Multiplier"/> or <see cref="Divisor"/> themselves.</param>
    /// <param name="factor">The host-side factor of the returned tensor.</param>
    public Tensor Materialize(Tensor param, Tensor work, out double factor)
    {
        Tensor u;
        if (Multiplier is not null) {
            if (!ReferenceEquals(work, Multiplier)) work.copy_(Multiplier);
            u = work.mul_(Numerator);
        } else if (Divisor is not null) {
            if (!ReferenceEquals(work, Divisor)) work.copy_(Divisor);
            u = work.reciprocal_().mul_(Numerator);
        } else {
            u = Numerator;
        }
        if (ScaleTensor is not null) {
            if (!ReferenceEquals(u, work)) u = work.copy_(u);
            u.mul_(ScaleTensor);
        }

        if (ParamDecay == 0) {
            factor = Scale;
            return u;
        }

        if (!ReferenceEquals(u, work)) work.copy_(u);
        work.mul_(Scale).add_(param, ParamDecay);
        factor = 1;
        return work;
    }
}
