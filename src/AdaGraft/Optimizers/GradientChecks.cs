using System;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace AdaGraft.Optimizers;

/// <summary>Checks on gradients made before a step changes anything.</summary>
internal static class GradientChecks
{
    /// <summary>Throws when <paramref name="p"/>'s gradient cannot be used by a dense optimizer.</summary>
    public static void Check(Parameter p)
    {
        using var grad = p.grad;
        if (grad is null) return;
        if (grad.is_sparse)
            throw new NotSupportedException($"The gradient of the parameter of shape [{string.Join(", ", p.shape)}] is sparse; AdaGraft's optimizers need dense gradients (create the embedding with sparse: false).");
        if (grad.dtype != p.dtype || grad.device_type != p.device_type || grad.device_index != p.device_index)
            throw new InvalidOperationException($"The gradient of the parameter of shape [{string.Join(", ", p.shape)}] is {grad.dtype} on {grad.device} but the parameter is {p.dtype} on {p.device}; give the parameter a gradient of its own dtype and device (e.g. grad.to(param.dtype, param.device)).");
    }
}
