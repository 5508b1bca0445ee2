using static TorchSharp.torch.optim;

namespace AdaGraft.Optimizers;

/// <summary>The presets that reproduce TorchSharp's built-ins (<c>torch.optim.*</c>): same arguments, defaults and numbers.</summary>
public sealed partial class GenericSecondMomentOptimizer
{
    // ---------------- TorchSharp-compatible forms (same defaults and numbers as torch.optim.*) ----------------
    // Each has TorchSharp's argument names, order and defaults (checked against TorchSharp's factories by reflection in
    // the tests), TorchSharp's four first-argument forms (parameters, named parameters, TorchSharp's parameter groups,
    // this optimizer's parameter groups), and accepts every finite value TorchSharp's built-in accepts.

    private static SecondMomentOptions TorchSgdOptions(double learningRate, double momentum, double dampening, double weight_decay, bool nesterov, bool maximize)
    {
        var o = MomentumOptions(learningRate, momentum, weight_decay);
        o.Dampening = dampening;
        o.Nesterov = nesterov;
        o.Maximize = maximize;
        return Named(o, TorchSgdNames);
    }

    private static void CopySgd(TorchSharp.Modules.SGD.Options s, SecondMomentOptions o)
    {
        o.Beta1 = s.momentum;
        o.Dampening = s.dampening;
        o.WeightDecay = s.weight_decay;
        o.Nesterov = s.nesterov;
        o.Maximize = s.maximize;
    }

    /// <summary>
    /// Reproduces <c>torch.optim.SGD</c> (a drop-in replacement, same arguments). Momentum may be any finite value ≥ 0,
    /// 1 included (TorchSharp's <c>CyclicLR</c> drives it to 1), as in TorchSharp.
    /// </summary>
    public static GenericSecondMomentOptimizer TorchSgd(IEnumerable<Parameter> parameters, double learningRate, double momentum = 0, double dampening = 0, double weight_decay = 0, bool nesterov = false, bool maximize = false)
        => new(parameters, TorchSgdOptions(learningRate, momentum, dampening, weight_decay, nesterov, maximize));

    /// <summary><c>torch.optim.SGD</c> over <c>model.named_parameters()</c>.</summary>
    public static GenericSecondMomentOptimizer TorchSgd(IEnumerable<(string name, Parameter parameter)> parameters, double learningRate, double momentum = 0, double dampening = 0, double weight_decay = 0, bool nesterov = false, bool maximize = false)
        => new(Unnamed(parameters), TorchSgdOptions(learningRate, momentum, dampening, weight_decay, nesterov, maximize));

    /// <summary><c>torch.optim.SGD</c> over TorchSharp's <c>SGD.ParamGroup</c>s (copied; unset group options take these arguments).</summary>
    public static GenericSecondMomentOptimizer TorchSgd(IEnumerable<TorchSharp.Modules.SGD.ParamGroup> parameters, double learningRate, double momentum = 0, double dampening = 0, double weight_decay = 0, bool nesterov = false, bool maximize = false)
        => new(FromTorch<TorchSharp.Modules.SGD.Options>(parameters, CopySgd), TorchSgdOptions(learningRate, momentum, dampening, weight_decay, nesterov, maximize));

    /// <summary><c>torch.optim.SGD</c> over this optimizer's parameter groups (unset group options take these arguments).</summary>
    public static GenericSecondMomentOptimizer TorchSgd(IEnumerable<ParamGroup> parameters, double learningRate, double momentum = 0, double dampening = 0, double weight_decay = 0, bool nesterov = false, bool maximize = false)
        => new(parameters, TorchSgdOptions(learningRate, momentum, dampening, weight_decay, nesterov, maximize));

    /// <summary>Options that reproduce <c>torch.optim.Adam</c>.</summary>
    public static SecondMomentOptions TorchAdamOptions(double lr = 1e-3, double beta1 = 0.9, double beta2 = 0.999, double eps = 1e-8, double weight_decay = 0, bool amsgrad = false, bool maximize = false)
    {
        var o = AdamOptions(lr, beta1, beta2, eps, weight_decay);
        o.AmsGrad = amsgrad;
        o.Maximize = maximize;
        return o;
    }

    /// <summary>Copies the options a TorchSharp <c>Adam</c> or <c>AdamW</c> parameter group sets (null: inherited).</summary>
    private static void CopyAdamOptions(SecondMomentOptions o, double? beta1, double? beta2, double? eps, double? weight_decay, bool? amsgrad, bool? maximize)
    {
        o.Beta1 = beta1;
        o.Beta2 = beta2;
        o.Epsilon = eps;
        o.WeightDecay = weight_decay;
        o.AmsGrad = amsgrad;
        o.Maximize = maximize;
    }

    private static void CopyAdam(TorchSharp.Modules.Adam.Options s, SecondMomentOptions o) =>
        CopyAdamOptions(o, s.beta1, s.beta2, s.eps, s.weight_decay, s.amsgrad, s.maximize);

    private static void CopyAdamW(TorchSharp.Modules.AdamW.Options s, SecondMomentOptions o) =>
        CopyAdamOptions(o, s.beta1, s.beta2, s.eps, s.weight_decay, s.amsgrad, s.maximize);

    /// <summary>Reproduces <c>torch.optim.Adam</c> (a drop-in replacement, same arguments).</summary>
    public static GenericSecondMomentOptimizer TorchAdam(IEnumerable<Parameter> parameters, double lr = 1e-3, double beta1 = 0.9, double beta2 = 0.999, double eps = 1e-8, double weight_decay = 0, bool amsgrad = false, bool maximize = false)
        => new(parameters, TorchAdamOptions(lr, beta1, beta2, eps, weight_decay, amsgrad, maximize));

    /// <summary><c>torch.optim.Adam</c> over <c>model.named_parameters()</c>.</summary>
    public static GenericSecondMomentOptimizer TorchAdam(IEnumerable<(string name, Parameter parameter)> parameters, double lr = 1e-3, double beta1 = 0.9, double beta2 = 0.999, double eps = 1e-8, double weight_decay = 0, bool amsgrad = false, bool maximize = false)
        => new(Unnamed(parameters), TorchAdamOptions(lr, beta1, beta2, eps, weight_decay, amsgrad, maximize));

    /// <summary><c>torch.optim.Adam</c> over TorchSharp's <c>Adam.ParamGroup</c>s (copied; unset group options take these arguments).</summary>
    public static GenericSecondMomentOptimizer TorchAdam(IEnumerable<TorchSharp.Modules.Adam.ParamGroup> parameters, double lr = 1e-3, double beta1 = 0.9, double beta2 = 0.999, double eps = 1e-8, double weight_decay = 0, bool amsgrad = false, bool maximize = false)
        => new(FromTorch<TorchSharp.Modules.Adam.Options>(parameters, CopyAdam), TorchAdamOptions(lr, beta1, beta2, eps, weight_decay, amsgrad, maximize));

    /// <summary><c>torch.optim.Adam</c> over this optimizer's parameter groups (unset group options take these arguments).</summary>
    public static GenericSecondMomentOptimizer TorchAdam(IEnumerable<ParamGroup> parameters, double lr = 1e-3, double beta1 = 0.9, double beta2 = 0.999, double eps = 1e-8, double weight_decay = 0, bool amsgrad = false, bool maximize = false)
        => new(parameters, TorchAdamOptions(lr, beta1, beta2, eps, weight_decay, amsgrad, maximize));

    /// <summary>
    /// AMSGrad (Reddi, Kale and Kumar, 2018, "On the Convergence of Adam and Beyond"): Adam dividing by the running
    /// maximum of the second moment; reproduces <c>torch.optim.Adam(..., amsgrad: true)</c>.
    /// </summary>
    /// <remarks>
    /// <code>
    /// m ← β1·m + (1−β1)·g;  v ← β2·v + (1−β2)·g²;  v̂ ← max(v̂, v)
    /// w ← w − η · (m / (1−β1^t)) / (√(v̂ / (1−β2^t)) + ε)
    /// </code>
    /// </remarks>
    public static GenericSecondMomentOptimizer AmsGrad(IEnumerable<Parameter> parameters, double lr = 1e-3, double beta1 = 0.9, double beta2 = 0.999, double eps = 1e-8, double weight_decay = 0, bool maximize = false)
        => TorchAdam(parameters, lr, beta1, beta2, eps, weight_decay, amsgrad: true, maximize: maximize);

    /// <summary><see cref="AmsGrad(IEnumerable{Parameter}, double, double, double, double, double, bool)"/> over parameter groups (unset group options take these arguments).</summary>
    public static GenericSecondMomentOptimizer AmsGrad(IEnumerable<ParamGroup> parameters, double lr = 1e-3, double beta1 = 0.9, double beta2 = 0.999, double eps = 1e-8, double weight_decay = 0, bool maximize = false)
        => TorchAdam(parameters, lr, beta1, beta2, eps, weight_decay, amsgrad: true, maximize: maximize);

    private static SecondMomentOptions TorchAdamWOptions(double lr, double beta1, double beta2, double eps, double weight_decay, bool amsgrad, bool maximize)
    {
        var o = TorchAdamOptions(lr, beta1, beta2, eps, weight_decay, amsgrad, maximize);
        o.DecoupledWeightDecay = true;
        return o;
    }

    /// <summary>
    /// Reproduces <c>torch.optim.AdamW</c> (decoupled weight decay; a drop-in replacement with TorchSharp's arguments
    /// and defaults, so <paramref name="weight_decay"/> defaults to 0 as in TorchSharp, not PyTorch's 0.01).
    /// </summary>
    public static GenericSecondMomentOptimizer TorchAdamW(IEnumerable<Parameter> parameters, double lr = 1e-3, double beta1 = 0.9, double beta2 = 0.999, double eps = 1e-8, double weight_decay = 0, bool amsgrad = false, bool maximize = false)
        => new(parameters, TorchAdamWOptions(lr, beta1, beta2, eps, weight_decay, amsgrad, maximize));

    /// <summary><c>torch.optim.AdamW</c> over <c>model.named_parameters()</c>.</summary>
    public static GenericSecondMomentOptimizer TorchAdamW(IEnumerable<(string name, Parameter parameter)> parameters, double lr = 1e-3, double beta1 = 0.9, double beta2 = 0.999, double eps = 1e-8, double weight_decay = 0, bool amsgrad = false, bool maximize = false)
        => new(Unnamed(parameters), TorchAdamWOptions(lr, beta1, beta2, eps, weight_decay, amsgrad, maximize));

    /// <summary><c>torch.optim.AdamW</c> over TorchSharp's <c>AdamW.ParamGroup</c>s (copied; unset group options take these arguments).</summary>
    public static GenericSecondMomentOptimizer TorchAdamW(IEnumerable<TorchSharp.Modules.AdamW.ParamGroup> parameters, double lr = 1e-3, double beta1 = 0.9, double beta2 = 0.999, double eps = 1e-8, double weight_decay = 0, bool amsgrad = false, bool maximize = false)
        => new(FromTorch<TorchSharp.Modules.AdamW.Options>(parameters, CopyAdamW), TorchAdamWOptions(lr, beta1, beta2, eps, weight_decay, amsgrad, maximize));

    /// <summary><c>torch.optim.AdamW</c> over this optimizer's parameter groups (unset group options take these arguments).</summary>
    public static GenericSecondMomentOptimizer TorchAdamW(IEnumerable<ParamGroup> parameters, double lr = 1e-3, double beta1 = 0.9, double beta2 = 0.999, double eps = 1e-8, double weight_decay = 0, bool amsgrad = false, bool maximize = false)
        => new(parameters, TorchAdamWOptions(lr, beta1, beta2, eps, weight_decay, amsgrad, maximize));

    private static SecondMomentOptions TorchAdagradOptions(double lr, double lr_decay, double weight_decay, double initial_accumulator_value, double eps)
    {
        var o = PreconditionedOptions(lr, 0, 1, eps, Rules.EpsilonPlacement.OutsideRoot, weight_decay);
        o.LearningRateDecay = lr_decay;
        o.InitialAccumulator = initial_accumulator_value;
        return o;
    }

    private static void CopyAdagrad(TorchSharp.Modules.Adagrad.Options s, SecondMomentOptions o)
    {
        o.LearningRateDecay = s.lr_decay;
        o.InitialAccumulator = s.initial_accumulator_value;
        o.Epsilon = s.eps;
        o.WeightDecay = s.weight_decay;
    }

    /// <summary>Reproduces <c>torch.optim.Adagrad</c> (a drop-in replacement, same arguments).</summary>
    public static GenericSecondMomentOptimizer TorchAdagrad(IEnumerable<Parameter> parameters, double lr = 1e-2, double lr_decay = 0, double weight_decay = 0, double initial_accumulator_value = 0, double eps = 1e-10)
        => new(parameters, TorchAdagradOptions(lr, lr_decay, weight_decay, initial_accumulator_value, eps));

    /// <summary><c>torch.optim.Adagrad</c> over <c>model.named_parameters()</c>.</summary>
    public static GenericSecondMomentOptimizer TorchAdagrad(IEnumerable<(string name, Parameter parameter)> parameters, double lr = 1e-2, double lr_decay = 0, double weight_decay = 0, double initial_accumulator_value = 0, double eps = 1e-10)
        => new(Unnamed(parameters), TorchAdagradOptions(lr, lr_decay, weight_decay, initial_accumulator_value, eps));

    /// <summary><c>torch.optim.Adagrad</c> over TorchSharp's <c>Adagrad.ParamGroup</c>s (copied; unset group options take these arguments).</summary>
    public static GenericSecondMomentOptimizer TorchAdagrad(IEnumerable<TorchSharp.Modules.Adagrad.ParamGroup> parameters, double lr = 1e-2, double lr_decay = 0, double weight_decay = 0, double initial_accumulator_value = 0, double eps = 1e-10)
        => new(FromTorch<TorchSharp.Modules.Adagrad.Options>(parameters, CopyAdagrad), TorchAdagradOptions(lr, lr_decay, weight_decay, initial_accumulator_value, eps));

    /// <summary><c>torch.optim.Adagrad</c> over this optimizer's parameter groups (unset group options take these arguments).</summary>
    public static GenericSecondMomentOptimizer TorchAdagrad(IEnumerable<ParamGroup> parameters, double lr = 1e-2, double lr_decay = 0, double weight_decay = 0, double initial_accumulator_value = 0, double eps = 1e-10)
        => new(parameters, TorchAdagradOptions(lr, lr_decay, weight_decay, initial_accumulator_value, eps));

    /// <summary>
    /// The one place <c>centered: true</c> lands (TorchRmsProp's argument and a TorchSharp <c>RMSProp.ParamGroup</c>'s
    /// option). Centered RMSprop divides by √(v − ḡ²) with ḡ a running mean of the gradient, which Algorithm 1 does not
    /// keep; until a rule computes it, it is refused here, before anything is built.
    /// </summary>
    private static void RequireNotCentered(bool? centered)
    {
        if (centered == true)
            throw new NotSupportedException(
                "centered: true (centered RMSprop, which divides by √(v − mean(g)²)) is not supported by TorchRmsProp: Algorithm 1 keeps no "
                + "running mean of the gradient. Use RmsPropOptimizer.Create(parameters, lr, alpha, eps, weight_decay, momentum, centered: true) "
                + "(the same arguments and numbers as torch.optim.RMSProp, fused on CPU, usable in closed-form grafts), or centered: false here.");
    }

    private static SecondMomentOptions TorchRmsPropOptions(double lr, double alpha, double eps, double weight_decay, double momentum, bool centered, bool maximize)
    {
        RequireNotCentered(centered);
        var o = PreconditionedOptions(lr, momentum, alpha, eps, Rules.EpsilonPlacement.OutsideRoot, weight_decay);
        o.ScaleSecondMoment = true;
        o.MomentumPlacement = Rules.MomentumPlacement.AfterPreconditioner;
        o.Maximize = maximize;
        return Named(o, TorchRmsPropNames);
    }

    private static void CopyRmsProp(TorchSharp.Modules.RMSProp.Options s, SecondMomentOptions o)
    {
        RequireNotCentered(s.centered);
        o.Beta1 = s.momentum;
        o.Beta2 = s.alpha;
        o.Epsilon = s.eps;
        o.WeightDecay = s.weight_decay;
        o.Maximize = s.maximize;
    }

    /// <summary>
    /// Reproduces <c>torch.optim.RMSProp</c> (a drop-in replacement, same arguments): momentum of preconditioned
    /// gradients. <paramref name="centered"/> is TorchSharp's seventh argument; <c>centered: true</c> raises
    /// <see cref="NotSupportedException"/> (Algorithm 1 has no running mean of the gradient).
    /// </summary>
    public static GenericSecondMomentOptimizer TorchRmsProp(IEnumerable<Parameter> parameters, double lr = 1e-2, double alpha = 0.99, double eps = 1e-8, double weight_decay = 0, double momentum = 0, bool centered = false, bool maximize = false)
        => new(parameters, TorchRmsPropOptions(lr, alpha, eps, weight_decay, momentum, centered, maximize));

    /// <summary><c>torch.optim.RMSProp</c> over <c>model.named_parameters()</c>.</summary>
    public static GenericSecondMomentOptimizer TorchRmsProp(IEnumerable<(string name, Parameter parameter)> parameters, double lr = 1e-2, double alpha = 0.99, double eps = 1e-8, double weight_decay = 0, double momentum = 0, bool centered = false, bool maximize = false)
        => new(Unnamed(parameters), TorchRmsPropOptions(lr, alpha, eps, weight_decay, momentum, centered, maximize));

    /// <summary><c>torch.optim.RMSProp</c> over TorchSharp's <c>RMSProp.ParamGroup</c>s (copied; unset group options take these arguments).</summary>
    public static GenericSecondMomentOptimizer TorchRmsProp(IEnumerable<TorchSharp.Modules.RMSProp.ParamGroup> parameters, double lr = 1e-2, double alpha = 0.99, double eps = 1e-8, double weight_decay = 0, double momentum = 0, bool centered = false, bool maximize = false)
    {
        var defaults = TorchRmsPropOptions(lr, alpha, eps, weight_decay, momentum, centered, maximize);
        return new(FromTorch<TorchSharp.Modules.RMSProp.Options>(parameters, CopyRmsProp), defaults);
    }

    /// <summary><c>torch.optim.RMSProp</c> over this optimizer's parameter groups (unset group options take these arguments).</summary>
    public static GenericSecondMomentOptimizer TorchRmsProp(IEnumerable<ParamGroup> parameters, double lr = 1e-2, double alpha = 0.99, double eps = 1e-8, double weight_decay = 0, double momentum = 0, bool centered = false, bool maximize = false)
        => new(parameters, TorchRmsPropOptions(lr, alpha, eps, weight_decay, momentum, centered, maximize));

    /// <summary>The parameters this optimizer manages, in group order.</summary>
    public IReadOnlyList<Parameter> Parameters => _parameter_groups.SelectMany(g => g.Parameters).ToList();
}
