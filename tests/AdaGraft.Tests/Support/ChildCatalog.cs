namespace AdaGraft.Tests.Support;

/// <summary>
/// The optimizers grafting is tested over: the paper's forms (rule-based, closed form available) and TorchSharp's
/// built-ins (black box only). Each factory takes the parameters and a learning-rate multiplier.
/// </summary>
public static class ChildCatalog
{
    public static readonly Dictionary<string, Func<IEnumerable<Parameter>, double, optim.Optimizer>> Factories = new() {
        ["paper-sgd"] = (p, s) => GenericSecondMomentOptimizer.Sgd(p, 0.05 * s),
        ["paper-heavyball"] = (p, s) => GenericSecondMomentOptimizer.HeavyBall(p, 0.02 * s),
        ["paper-adagrad"] = (p, s) => GenericSecondMomentOptimizer.AdaGrad(p, 0.1 * s),
        ["paper-rmsprop"] = (p, s) => GenericSecondMomentOptimizer.RmsProp(p, 0.01 * s),
        ["paper-adam"] = (p, s) => GenericSecondMomentOptimizer.Adam(p, 0.01 * s),
        ["torch-sgd"] = (p, s) => optim.SGD(p, 0.05 * s),
        ["torch-heavyball"] = (p, s) => optim.SGD(p, 0.02 * s, momentum: 0.9),
        ["torch-adagrad"] = (p, s) => optim.Adagrad(p, 0.1 * s),
        ["torch-rmsprop"] = (p, s) => optim.RMSProp(p, 0.01 * s),
        ["torch-adam"] = (p, s) => optim.Adam(p, 0.01 * s),
    };

    public static bool IsRuleBased(string name) => name.StartsWith("paper-", StringComparison.Ordinal);

    public static optim.Optimizer Make(string name, IEnumerable<Parameter> ps, double lrScale = 1) => Factories[name](ps, lrScale);

    /// <summary>The graft of the catalog's <paramref name="m"/> (magnitude) and <paramref name="d"/> (direction) over <paramref name="ps"/>.</summary>
    public static GraftOptimizer Graft(string m, string d, IList<Parameter> ps, GraftOptions options) => new(Make(m, ps), Make(d, ps), options);

    /// <summary>
    /// The checkpoint of <see cref="Graft"/>(<paramref name="m"/>, <paramref name="d"/>) over <see cref="Fixtures.Shapes"/>
    /// (seed 1) after <paramref name="steps"/> steps of the default gradient stream; the graft is disposed.
    /// </summary>
    public static byte[] SavedGraft(string m, string d, GraftOptions options, int steps)
    {
        var source = Fixtures.MakeParameters(Fixtures.Shapes);
        using var graft = Graft(m, d, source, options);
        Fixtures.Run(graft, source, 0, steps);
        return StateBytes.Save(graft.save_state_dict);
    }
}
