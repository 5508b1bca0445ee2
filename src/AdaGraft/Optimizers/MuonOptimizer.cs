namespace AdaGraft.Optimizers;

/// <summary>
/// Muon (Jordan et al., 2024) with a fallback AdamW, as a TorchSharp optimizer; see <see cref="MuonRule"/> for the
/// update. Each parameter group is a Muon group (<see cref="MuonOptions.UseMuon"/>, matrices and reshaped kernels only)
/// or an AdamW group (vectors, scalars, and any matrix you prefer to leave to AdamW, such as embeddings and the output
/// layer). Build it with <c>Create</c> (one Muon group, as <c>torch.optim.Muon</c>), <c>CreateWithAdamW</c> (split by
/// rank) or over groups from <see cref="SplitByRank(IEnumerable{Parameter}, double?)"/>. Usable standalone and as M or D
/// of a closed-form graft (<see cref="Grafting.MuonGraft"/> builds Adam#Muon).
/// </summary>
public sealed class MuonOptimizer : MomentRuleOptimizer<MuonOptions, MuonState, MuonRule>
{
    /// <summary>Creates the optimizer over <paramref name="parameters"/> (one Muon group) with <paramref name="options"/> (every option must be set).</summary>
    public MuonOptimizer(IEnumerable<Parameter> parameters, MuonOptions options) : base(parameters, options) { }

    /// <summary>Creates the optimizer over parameter groups; unset group options come from <paramref name="defaults"/>.</summary>
    public MuonOptimizer(IEnumerable<MomentParamGroup<MuonOptions>> groups, MuonOptions defaults) : base(groups, defaults) { }

    /// <summary>
    /// Options with every hyperparameter set: <c>torch.optim.Muon</c>'s defaults (lr 1e-3, weight decay 0.1, momentum
    /// 0.95, Nesterov, coefficients (3.4445, −4.7750, 2.0315), ε 1e-7, 5 steps, the original size rule), Newton–Schulz
    /// in float32, and <c>torch.optim.AdamW</c>'s (TorchSharp 0.107) for the fallback: betas (0.9, 0.999), ε 1e-8, no decay.
    /// </summary>
    public static MuonOptions DefaultOptions(double lr = 1e-3, double weight_decay = 0.1, double momentum = 0.95, bool nesterov = true,
        (double a, double b, double c)? ns_coefficients = null, double eps = 1e-7, int ns_steps = 5,
        MuonSizeRule adjust_lr_fn = MuonSizeRule.Original, NewtonSchulzPrecision ns_precision = NewtonSchulzPrecision.Fp32,
        (double beta1, double beta2)? adamw_betas = null, double adamw_eps = 1e-8, double adamw_weight_decay = 0)
    {
        var (a, b, c) = ns_coefficients ?? (3.4445, -4.7750, 2.0315);
        var (beta1, beta2) = adamw_betas ?? (0.9, 0.999);
        return new() {
            LearningRate = lr,
            UseMuon = true,
            WeightDecay = weight_decay,
            Momentum = momentum,
            Nesterov = nesterov,
            NsCoefficientA = a,
            NsCoefficientB = b,
            NsCoefficientC = c,
            Epsilon = eps,
            NsSteps = ns_steps,
            SizeRule = adjust_lr_fn,
            NsPrecision = ns_precision,
            AdamBeta1 = beta1,
            AdamBeta2 = beta2,
            AdamEpsilon = adamw_eps,
            AdamWeightDecay = adamw_weight_decay,
        };
    }

    /// <summary>
    /// <c>torch.optim.Muon(params, lr, weight_decay, momentum, nesterov, ns_coefficients, eps, ns_steps, adjust_lr_fn)</c>:
    /// every parameter in one Muon group, so each must have rank ≥ 2 (others raise; use <c>CreateWithAdamW</c>).
    /// </summary>
    public static MuonOptimizer Create(IEnumerable<Parameter> parameters, double lr = 1e-3, double weight_decay = 0.1, double momentum = 0.95,
        bool nesterov = true, (double a, double b, double c)? ns_coefficients = null, double eps = 1e-7, int ns_steps = 5,
        MuonSizeRule adjust_lr_fn = MuonSizeRule.Original, NewtonSchulzPrecision ns_precision = NewtonSchulzPrecision.Fp32)
        => new(parameters, DefaultOptions(lr, weight_decay, momentum, nesterov, ns_coefficients, eps, ns_steps, adjust_lr_fn, ns_precision));

    /// <summary>
    /// Muon over parameter groups (e.g. from <see cref="SplitByRank(IEnumerable{Parameter}, double?)"/>): unset group options
    /// take these arguments; a group with <c>UseMuon = false</c> is an AdamW group with the <c>adamw_*</c> settings.
    /// </summary>
    public static MuonOptimizer Create(IEnumerable<MomentParamGroup<MuonOptions>> parameters, double lr = 1e-3, double weight_decay = 0.1,
        double momentum = 0.95, bool nesterov = true, (double a, double b, double c)? ns_coefficients = null, double eps = 1e-7,
        int ns_steps = 5, MuonSizeRule adjust_lr_fn = MuonSizeRule.Original, NewtonSchulzPrecision ns_precision = NewtonSchulzPrecision.Fp32,
        (double beta1, double beta2)? adamw_betas = null, double adamw_eps = 1e-8, double adamw_weight_decay = 0)
        => new(parameters, DefaultOptions(lr, weight_decay, momentum, nesterov, ns_coefficients, eps, ns_steps, adjust_lr_fn, ns_precision,
            adamw_betas, adamw_eps, adamw_weight_decay));

    /// <summary>
    /// Muon for every parameter of rank ≥ 2 and AdamW for the rest (<see cref="SplitByRank(IEnumerable{Parameter}, double?)"/>), in
    /// one optimizer; <paramref name="adamw_lr"/> is the AdamW group's learning rate (null: <paramref name="lr"/>).
    /// </summary>
    public static MuonOptimizer CreateWithAdamW(IEnumerable<Parameter> parameters, double lr = 1e-3, double weight_decay = 0.1,
        double momentum = 0.95, bool nesterov = true, (double a, double b, double c)? ns_coefficients = null, double eps = 1e-7,
        int ns_steps = 5, MuonSizeRule adjust_lr_fn = MuonSizeRule.Original, NewtonSchulzPrecision ns_precision = NewtonSchulzPrecision.Fp32,
        double? adamw_lr = null, (double beta1, double beta2)? adamw_betas = null, double adamw_eps = 1e-8, double adamw_weight_decay = 0)
        => Create(SplitByRank(parameters, adamw_lr), lr, weight_decay, momentum, nesterov, ns_coefficients, eps, ns_steps, adjust_lr_fn,
            ns_precision, adamw_betas, adamw_eps, adamw_weight_decay);

    /// <summary>
    /// Two groups (each only if not empty): a Muon group of the parameters of rank ≥ 2 and an AdamW group
    /// (<c>UseMuon = false</c>, learning rate <paramref name="adamw_lr"/>, or inherited when null) of the others.
    /// Other options are unset, so they come from the optimizer's defaults; change them on the returned groups.
    /// </summary>
    public static List<MomentParamGroup<MuonOptions>> SplitByRank(IEnumerable<Parameter> parameters, double? adamw_lr = null)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        return SplitByRank(parameters.Select(p => (string.Empty, p)), null, adamw_lr);
    }

    /// <summary>
    /// <see cref="SplitByRank(IEnumerable{Parameter}, double?)"/> over <c>model.named_parameters()</c>, sending also the matrices
    /// whose name <paramref name="toAdamW"/> accepts to AdamW (Jordan et al. leave the embedding and the output layer
    /// to AdamW: e.g. <c>name =&gt; name.StartsWith("embed") || name.StartsWith("head")</c>).
    /// </summary>
    public static List<MomentParamGroup<MuonOptions>> SplitByRank(IEnumerable<(string name, Parameter parameter)> named_parameters,
        Func<string, bool>? toAdamW, double? adamw_lr = null)
    {
        ArgumentNullException.ThrowIfNull(named_parameters);
        var muon = new List<Parameter>();
        var adamw = new List<Parameter>();
        foreach (var (name, p) in named_parameters) {
            ArgumentNullException.ThrowIfNull(p, nameof(named_parameters));
            (p.dim() >= 2 && toAdamW?.Invoke(name) != true ? muon : adamw).Add(p);
        }
        var groups = new List<MomentParamGroup<MuonOptions>>();
        if (muon.Count > 0) groups.Add(new(muon, new MuonOptions { UseMuon = true }));
        if (adamw.Count > 0) groups.Add(new(adamw, new MuonOptions { UseMuon = false, LearningRate = adamw_lr }));
        return groups;
    }

    /// <summary>A Muon group takes tensors of rank ≥ 2 only; raised when the group is added and before each step.</summary>
    protected override void ValidateGroup(MuonOptions options, IEnumerable<Parameter> parameters)
    {
        if (options.UseMuon != true) return;
        int i = 0;
        foreach (var p in parameters) {
            if (p.dim() < 2)
                throw new ArgumentException(
                    $"Parameter {i} of a Muon group has shape [{string.Join(", ", p.shape)}]: Muon orthogonalises matrices only (rank ≥ 2; "
                    + "convolution kernels are reshaped to out × rest). Put it in an AdamW group (UseMuon = false): build the optimizer "
                    + "with MuonOptimizer.CreateWithAdamW or over MuonOptimizer.SplitByRank(parameters).", nameof(parameters));
            i++;
        }
    }
}
