namespace AdaGraft.Rules;

/// <summary>
/// Shampoo (Gupta, Koren and Singer, 2018, "Shampoo: Preconditioned Stochastic Tensor Optimization", ICML), in the form
/// of Distributed Shampoo (Shi, Lee, Iwasaki, Gallego-Posada, Li, Rangadurai, Mudigere and Rabbat, 2023, "A
/// Distributed Data-Parallel PyTorch Implementation of the Distributed Shampoo Optimizer for Training Neural Networks
/// At-Scale"): a Kronecker-factored full-matrix AdaGrad per block, with its step size grafted per block from a
/// diagonal method.
/// </summary>
/// <remarks>
/// Each tensor is seen in its merged shape (size-1 dimensions dropped, neighbours merged while their product is at
/// most <c>max_preconditioner_dim</c>) and cut into blocks of at most <c>max_preconditioner_dim</c> per side. With k the
/// number of merged dimensions (2 for a matrix) and t the step (from 1), per block:
/// <code>
/// G ← G + λ·W                                      only with coupled (L2) weight decay
/// G̃ ← β1·G̃ + (1−β1)·G;  Ĝ = G̃/(1−β1^t)              (Ĝ = G when β1 = 0)
/// L ← L + G·Gᵀ, R ← R + Gᵀ·G                         β2 = 1 (default); β2 &lt; 1: L ← β2·L + (1−β2)·G·Gᵀ, …
///                                                   (k &gt; 2: one factor per dimension, G unfolded along it)
/// every precondition_frequency steps from start_preconditioning_step on:
///   L̂ = L/(1−β2^t) (β2 &lt; 1; L̂ = L for β2 = 1)
///   L̃ = (L̂ + ε·I)^(−1/p), R̃ likewise                p = 2k (−1/4 for matrices) or exponent_override
///       by eigh in float32 (float64 for float64 factors), float64 retry; failed or non-finite: previous root kept
/// A = grafting direction of Ĝ:  SGD Ĝ | AdaGrad V ← V + G², Ĝ/(√V + ε_g) | RMSprop V ← β_g·V + (1−β_g)·G², Ĝ/(√V + ε_g)
///                               | Adam RMSprop's V, Ĝ/(√(V/(1−β_g^t)) + ε_g) | none Ĝ
/// P = L̃·Ĝ·R̃                                           (k &gt; 2: Ĝ contracted with each root along its dimension)
/// D = P·‖A‖/‖P‖ (0 where ‖P‖ = 0), Frobenius norms of the block; D = P without grafting
/// D = A before start_preconditioning_step, for scalars and vectors, and for blocks with a side above
///     skip_preconditioning_dim_size_gt
/// M ← μ·M + D;  U = M, or D + μ·M with Nesterov     (U = D when μ = 0)
/// W ← W − η·(U + λ·W)                              (λ·W only with decoupled weight decay, the default)
/// </code>
/// Roots start as the identity. Grafting ratios stay on the device; the only host synchronisation is the root
/// computation's check for failures (one read of one flag per factor before and after the eigendecompositions, per
/// tensor, on root steps only — every <c>precondition_frequency</c> steps; on CUDA, <c>torch.linalg.eigh</c> synchronises
/// itself as well). <see cref="ShampooState.RootFailures"/> counts failed roots; parameters never take a NaN from one.
/// <para>
/// Where this differs from facebookresearch/optimizers' distributed_shampoo, and why: scalars and vectors take the
/// grafting direction (distributed_shampoo preconditions a vector with one full factor); a tensor of rank ≥ 2 whose
/// greedy merge would leave one dimension becomes first dimension × rest (so a small convolution kernel stays a
/// matrix rather than falling to the vector rule); roots are due at <c>start_preconditioning_step</c> and every
/// <c>precondition_frequency</c> steps after it (not at multiples of the frequency); roots start as the identity;
/// factors are kept in the parameter's dtype (float16/bfloat16 parameters get low-precision factors: use float32
/// parameters); blocks with a side above <c>skip_preconditioning_dim_size_gt</c> take the grafting direction (as the
/// Google implementation's option of that name, here per block). The eigenvalue floor (shift by −min(λ_min, 0), then
/// + ε) and the β2 &lt; 1 form (1−β2)·G·Gᵀ with 1−β2^t bias correction follow distributed_shampoo. Not implemented:
/// distribution, coupled Newton roots, eigenvalue-corrected (SOAP-style) updates, dampening, exponent multipliers.
/// </para>
/// </remarks>
public sealed class ShampooRule : IRule<ShampooOptions, ShampooState>
{
    private ShampooRule() { }

    /// <inheritdoc />
    public static ShampooState NewState(Parameter parameter) => new(parameter);

    /// <summary>Advances <paramref name="state"/> with <paramref name="grad"/> and returns the step for <paramref name="param"/>.</summary>
    public static Proposal Propose(ShampooOptions o, ShampooState state, Tensor param, Tensor grad)
    {
        RuleSteps.Check(o, state);
        bool decoupled = o.DecoupledWeightDecay!.Value;
        double lr = o.LearningRate!.Value, wd = o.WeightDecay!.Value, beta1 = o.Beta1!.Value, mu = o.Momentum!.Value;
        var g = !decoupled && wd != 0 ? grad.add(param, wd) : grad;
        long t = ++state.Step;

        var filtered = g;
        if (beta1 > 0) {
            var m = state.Slot(ShampooState.Filtered);
            m.mul_(beta1).add_(g, 1 - beta1);
            filtered = m.div(1 - Math.Pow(beta1, t));
        }

        var d = state.Scratch(ShampooState.Direction);
        GraftingDirection(o, state, g, filtered, t, d);

        var layout = state.Layout;
        if (layout.Preconditioned) {
            UpdateFactors(o, state, layout, g);
            double start = o.StartPreconditioningStep!.Value;
            if (t >= start) {
                if ((t - (long)start) % o.PreconditionFrequency!.Value == 0) ShampooRoots.Refresh(o, state, layout, t);
                Precondition(o, state, layout, filtered, d);
            }
        }

        var u = d;
        if (mu > 0) {
            var momentum = state.Slot(ShampooState.MomentumBuffer);
            momentum.mul_(mu).add_(d);
            u = o.Nesterov!.Value ? d.add_(momentum, mu) : momentum;
        }
        return new Proposal(u, -lr, paramDecay: decoupled ? -lr * wd : 0);
    }

    /// <summary>Writes the grafting method's direction A for <paramref name="filtered"/> into <paramref name="a"/>, advancing its V with <paramref name="g"/>.</summary>
    private static void GraftingDirection(ShampooOptions o, ShampooState state, Tensor g, Tensor filtered, long t, Tensor a)
    {
        var method = o.Grafting!.Value;
        a.copy_(filtered);
        if (method is ShampooGrafting.None or ShampooGrafting.Sgd) return;
        var v = state.Slot(ShampooState.GraftMoment);
        double beta = o.GraftingBeta2!.Value, eps = o.GraftingEpsilon!.Value;
        if (method == ShampooGrafting.AdaGrad) v.addcmul_(g, g, 1);
        else v.mul_(beta).addcmul_(g, g, 1 - beta);
        var denominator = v.sqrt();
        if (method == ShampooGrafting.Adam) denominator.div_(Math.Sqrt(1 - Math.Pow(beta, t)));
        a.div_(denominator.add_(eps));
        if (eps == 0) a.nan_to_num_(0, 0, 0);
    }

    /// <summary>Adds each block's G·Gᵀ (per merged dimension) to its factors.</summary>
    private static void UpdateFactors(ShampooOptions o, ShampooState state, ShampooLayout layout, Tensor g)
    {
        var factors = state.Slot(ShampooState.Factors);
        double beta2 = o.Beta2!.Value;
        var merged = g.reshape(layout.Merged);
        foreach (var b in layout.Blocks) {
            if (b.FactorOffsets is null) continue;
            var block = ShampooLayout.Slice(merged, b);
            for (int dim = 0; dim < layout.Order; dim++) {
                var unfolded = block.movedim(new long[] { dim }, new long[] { 0 }).reshape(b.Size[dim], -1);
                var factor = b.Matrix(factors, dim);
                // addmm_ takes float coefficients; the decay goes through double-precision scalars instead.
                if (beta2 == 1) factor.addmm_(unfolded, unfolded.t());
                else factor.mul_(beta2).add_(unfolded.matmul(unfolded.t()), 1 - beta2);
            }
        }
    }

    /// <summary>Overwrites each preconditioned block of <paramref name="d"/> (holding A) with its grafted P.</summary>
    private static void Precondition(ShampooOptions o, ShampooState state, ShampooLayout layout, Tensor filtered, Tensor d)
    {
        var roots = state.RootsSlot();
        bool graft = o.Grafting!.Value != ShampooGrafting.None;
        var gm = filtered.reshape(layout.Merged);
        var dm = d.view(layout.Merged);
        foreach (var b in layout.Blocks) {
            if (b.FactorOffsets is null) continue;
            var target = ShampooLayout.Slice(dm, b);
            Tensor p;
            if (layout.Order == 2) {
                p = b.Matrix(roots, 0).matmul(ShampooLayout.Slice(gm, b)).matmul(b.Matrix(roots, 1));
            } else {
                // Contracting dimension 0 with a root moves it last: after k contractions the order is restored.
                p = ShampooLayout.Slice(gm, b);
                for (int dim = 0; dim < layout.Order; dim++) p = torch.tensordot(p, b.Matrix(roots, dim), new long[] { 0 }, new long[] { 0 });
            }
            if (graft) {
                var norm = p.norm();
                var ratio = torch.where(norm > 0, target.norm().div_(norm), torch.zeros_like(norm));
                p.mul_(ratio);
            }
            target.copy_(p);
        }
    }
}
