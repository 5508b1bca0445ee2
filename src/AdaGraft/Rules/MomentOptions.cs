namespace AdaGraft.Rules;

/// <summary>
/// Hyperparameters of a rule with two moment coefficients, β1 (momentum) and β2 (the rule's second average), which
/// schedulers read and set through <see cref="Optimizers.MomentParamGroup{TOptions}"/>. What each coefficient averages
/// and its valid range are the rule's: see the rule's remarks and its options' <see cref="RuleOptions.Validate"/>.
/// </summary>
public abstract class MomentOptions : RuleOptions, Optimizers.IMomentOptions
{
    /// <summary>β1, the first-moment (momentum) coefficient, in [0, 1).</summary>
    public double? Beta1 { get; set; }

    /// <summary>β2, the coefficient of the rule's second average (e.g. of g², |g| or the gradient norm), in [0, 1).</summary>
    public double? Beta2 { get; set; }

    /// <summary>Checks the learning rate, β1 and β2 (each in [0, 1), or [0, 1] where <c>closed</c>), with the fix to suggest.</summary>
    protected void ValidateBetas(string beta1Fix = "use e.g. 0.9.", string beta2Fix = "use e.g. 0.999.", bool beta1Closed = false, bool beta2Closed = false)
    {
        ValidateLearningRate();
        RequireInRange(Beta1, 0, 1, hiOpen: !beta1Closed, "beta1", beta1Fix);
        RequireInRange(Beta2, 0, 1, hiOpen: !beta2Closed, "beta2", beta2Fix);
    }
}

/// <summary>
/// Hyperparameters of an Adam-like rule: β1, β2, ε in the denominator (0: the pseudoinverse, a coordinate whose
/// denominator is 0 does not move) and weight decay λ ≥ 0 (coupled or decoupled: see the rule).
/// </summary>
public abstract class AdaptiveOptions : MomentOptions
{
    /// <summary>ε ≥ 0 in the denominator; 0 means the pseudoinverse (a coordinate whose denominator is 0 does not move).</summary>
    public double? Epsilon { get; set; }

    /// <summary>Weight decay λ ≥ 0 (added to the gradient or applied to the weights: see the rule).</summary>
    public double? WeightDecay { get; set; }

    /// <summary>Checks the learning rate, β1, β2, ε and the weight decay, with the fixes to suggest.</summary>
    protected void ValidateAdaptive(string beta1Fix = "use e.g. 0.9.", string beta2Fix = "use e.g. 0.999.",
        string epsFix = "use e.g. 1e-8, or 0 for the pseudoinverse.", string decayFix = "use 0 for none.", bool beta2Closed = false)
    {
        ValidateBetas(beta1Fix, beta2Fix, beta2Closed: beta2Closed);
        RequireAtLeast(Epsilon, 0, "eps", epsFix);
        RequireAtLeast(WeightDecay, 0, "weight_decay", decayFix);
    }
}
