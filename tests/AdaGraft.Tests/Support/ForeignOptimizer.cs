namespace AdaGraft.Tests.Support;

/// <summary>
/// The frame of an optimizer from another library, built on TorchSharp's <see cref="OptimizerHelper"/> alone: it
/// wraps a built-in for its parameter groups (what LR schedulers and grafts read) and owns it.
/// </summary>
internal abstract class ForeignOptimizer : OptimizerHelper
{
    protected ForeignOptimizer(List<Parameter> ps, optim.Optimizer inner)
    {
        Parameters = ps;
        Inner = inner;
        _parameter_groups = new List<TorchSharp.Modules.ParamGroup>();
    }

    protected List<Parameter> Parameters { get; }

    protected optim.Optimizer Inner { get; }

    public override IEnumerable<Parameter> parameters() => Parameters;

    public override IEnumerable<optim.ILearningRateController> ParamGroups => Inner.ParamGroups;

    protected override void Dispose(bool disposing)
    {
        if (disposing) Inner.Dispose();
        base.Dispose(disposing);
    }
}
