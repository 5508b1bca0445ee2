using System.Collections.Generic;
using TorchSharp.Modules;

namespace AdaGraft.Optimizers;

/// <summary>
/// Named presets of the direction zoo that are forms of <see cref="GenericSecondMomentOptimizer"/>, declared as
/// static extension members so that they read <c>GenericSecondMomentOptimizer.AmsGrad(...)</c> (C# 14; from older
/// language versions call <c>ZooPresets.AmsGrad(...)</c>).
/// </summary>
public static class ZooPresets
{
    extension(GenericSecondMomentOptimizer)
    {
        /// <summary>
        /// AMSGrad (Reddi, Kale and Kumar, 2018, "On the Convergence of Adam and Beyond"): Adam that divides by the
        /// running maximum of the second moment. Reproduces <c>torch.optim.Adam(..., amsgrad: true)</c>.
        /// </summary>
        /// <remarks>
        /// <code>
        /// m ← β1·m + (1−β1)·g
        /// v ← β2·v + (1−β2)·g²
        /// v̂ ← max(v̂, v)
        /// w ← w − η · (m / (1−β1^t)) / (√(v̂ / (1−β2^t)) + ε)
        /// </code>
        /// The same as <c>GenericSecondMomentOptimizer.TorchAdam(..., amsgrad: true)</c>.
        /// </remarks>
        public static GenericSecondMomentOptimizer AmsGrad(IEnumerable<Parameter> parameters, double lr = 1e-3, double beta1 = 0.9, double beta2 = 0.999, double eps = 1e-8, double weight_decay = 0, bool maximize = false)
            => GenericSecondMomentOptimizer.TorchAdam(parameters, lr, beta1, beta2, eps, weight_decay, amsgrad: true, maximize: maximize);
    }
}
