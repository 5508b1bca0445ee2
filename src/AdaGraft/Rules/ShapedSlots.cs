using TorchSharp;
using static TorchSharp.torch;

namespace AdaGraft.Rules;

/// <summary>
/// Allocation of persistent slots whose shape is not the parameter's (Adafactor's row and column accumulators,
/// NovoGrad's per-tensor scalar). <see cref="RuleState"/>'s own <c>EnsureSlot</c> always allocates a tensor shaped like
/// the parameter, so these slots are installed through <see cref="RuleState.Commit"/> with the other slots unchanged.
/// The state class must override <c>ExpectedSlotShape</c> with the same shape so that saved state is validated.
/// </summary>
internal static class ShapedSlots
{
    /// <summary>The slot <paramref name="index"/> of <paramref name="state"/>, allocated with <paramref name="shape"/>
    /// (same dtype and device as the parameter, filled with <paramref name="fill"/>) on first use.</summary>
    internal static Tensor Ensure(RuleState state, int index, long[] shape, double fill = 0)
    {
        var existing = state.GetSlot(index);
        if (existing is not null) return existing;
        var p = state.Parameter;
        var created = torch.full(shape, fill, dtype: p.dtype, device: p.device).DetachFromDisposeScope();
        var slots = new Tensor?[state.SlotNames.Length];
        for (int i = 0; i < slots.Length; i++) slots[i] = state.GetSlot(i);
        slots[index] = created;
        state.Commit(state.Step, slots);
        return created;
    }

    /// <summary>The shape without dimension <paramref name="dim"/> (negative counts from the end).</summary>
    internal static long[] Without(long[] shape, int dim)
    {
        int drop = dim < 0 ? shape.Length + dim : dim;
        var result = new long[shape.Length - 1];
        for (int i = 0, j = 0; i < shape.Length; i++) {
            if (i != drop) result[j++] = shape[i];
        }
        return result;
    }
}
