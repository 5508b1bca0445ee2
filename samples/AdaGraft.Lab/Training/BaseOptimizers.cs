using System;
using System.Collections.Generic;
using System.Linq;
using AdaGraft.Grafting;
using AdaGraft.Optimizers;
using TorchSharp.Modules;
using static TorchSharp.torch.optim;

namespace AdaGraft.Lab.Training;

/// <summary>The base optimizers of the grafting table (paper forms, momentum 0.9, ε = 0).</summary>
public enum BaseOptimizer
{
    /// <summary>Heavy-ball SGD, momentum 0.9 (the paper's "SGD").</summary>
    Sgd = 0,

    /// <summary>Adam, paper form: β = (0.9, 0.999), (1−β) scaling and bias correction, ε = 0.</summary>
    Adam = 1,

    /// <summary>AdaGrad with momentum 0.9, ε = 0 (pseudoinverse).</summary>
    AdaGrad = 2,
}

/// <summary>Builds the base optimizers and the grafts of the table.</summary>
public static class BaseOptimizers
{
    /// <summary>All three, in table order.</summary>
    public static readonly BaseOptimizer[] All = { BaseOptimizer.Sgd, BaseOptimizer.Adam, BaseOptimizer.AdaGrad };

    /// <summary>The display name.</summary>
    public static string Name(BaseOptimizer o) => o switch {
        BaseOptimizer.Sgd => "SGD",
        BaseOptimizer.Adam => "Adam",
        _ => "AdaGrad",
    };

    /// <summary>The paper-form optimizer <paramref name="kind"/> over <paramref name="parameters"/>.</summary>
    public static GenericSecondMomentOptimizer Create(BaseOptimizer kind, IEnumerable<Parameter> parameters, double lr) => kind switch {
        BaseOptimizer.Sgd => GenericSecondMomentOptimizer.HeavyBall(parameters, lr, momentum: 0.9),
        BaseOptimizer.Adam => GenericSecondMomentOptimizer.Adam(parameters, lr, beta1: 0.9, beta2: 0.999, eps: 0),
        BaseOptimizer.AdaGrad => GenericSecondMomentOptimizer.AdaGrad(parameters, lr, momentum: 0.9, eps: 0),
        _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, "Unknown base optimizer."),
    };

    /// <summary>
    /// The table's cell (M, D): M itself on the diagonal, otherwise the layer-wise graft M#D with M's learning rate
    /// <paramref name="magnitudeLr"/> and D's learning rate 1 (it cancels).
    /// </summary>
    public static Optimizer Cell(BaseOptimizer magnitude, BaseOptimizer direction, IEnumerable<Parameter> parameters, double magnitudeLr,
        GraftGranularity granularity = GraftGranularity.PerTensor)
    {
        var ps = parameters.ToList();
        if (magnitude == direction && granularity == GraftGranularity.PerTensor) return Create(magnitude, ps, magnitudeLr);
        return new GraftOptimizer(Create(magnitude, ps, magnitudeLr), Create(direction, ps, 1.0),
            new GraftOptions { Granularity = granularity, OwnsChildren = true });
    }

    /// <summary>"M#D" (or the base optimizer's name on the diagonal).</summary>
    public static string CellName(BaseOptimizer m, BaseOptimizer d) => m == d ? Name(m) : $"{Name(m)}#{Name(d)}";
}
