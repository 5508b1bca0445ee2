namespace AdaGraft.Rules;

/// <summary>
/// Collects the pieces of a state file read through TorchSharp's (non-virtual) <c>OptimizerHelper.load_state_dict</c>,
/// which loads options and states one by one, and applies them together once the last one was read and validated,
/// so a file that fails part-way changes nothing.
/// </summary>
internal interface ILoadStager
{
    void Stage(RuleOptions target, RuleOptions staged);

    void Stage(RuleState target, long step, Tensor?[] slots, double[] host);
}
