using System;
using System.Linq;
using TorchSharp;
using static TorchSharp.torch;

namespace AdaGraft.Lab.Tasks;

/// <summary>Final numbers of a trained model.</summary>
/// <param name="TrainLoss">Mean loss over the (evaluation part of the) training data.</param>
/// <param name="HeldOut">Held-out metric: test accuracy (vision) or held-out loss (language).</param>
public readonly record struct Evaluation(double TrainLoss, double HeldOut);

/// <summary>
/// A training task: data on the device, a model factory, a per-run batch plan (every batch index of the run
/// drawn up front and uploaded once, so a step needs no host work), the loss of step t, and the final evaluation.
/// </summary>
public abstract class LabTask : IDisposable
{
    /// <summary>Creates a task on <paramref name="device"/>.</summary>
    protected LabTask(Device device)
    {
        Device = device;
    }

    /// <summary>The device of data and models.</summary>
    public Device Device { get; }

    /// <summary>Short name: "vision" or "language".</summary>
    public abstract string Name { get; }

    /// <summary>One line: data, model and batch size.</summary>
    public abstract string Description { get; }

    /// <summary>Name of the held-out metric.</summary>
    public abstract string HeldOutName { get; }

    /// <summary>True when a larger held-out value is better (accuracy).</summary>
    public abstract bool HeldOutHigherIsBetter { get; }

    /// <summary>Number of trainable parameters of the model (for the report).</summary>
    public long ParameterCount()
    {
        using var m = CreateModel(0);
        long n = 0;
        foreach (var p in m.parameters()) n += p.numel();
        return n;
    }

    /// <summary>The model's parameter names in <c>parameters()</c> order (what an optimizer over them sees as tensor 0, 1, …).</summary>
    public string[] ParameterNames()
    {
        using var m = CreateModel(0);
        return m.named_parameters().Select(p => p.name).ToArray();
    }

    /// <summary>A new model initialised from <paramref name="seed"/>, on <see cref="Device"/>.</summary>
    public abstract nn.Module<Tensor, Tensor> CreateModel(int seed);

    /// <summary>The batch plan of a run of <paramref name="steps"/> steps: a [steps, batch] int64 device tensor.</summary>
    public abstract Tensor CreatePlan(int seed, int steps);

    /// <summary>The training loss (0-d) of step <paramref name="stepIndex"/> of <paramref name="plan"/>.</summary>
    public abstract Tensor Loss(nn.Module<Tensor, Tensor> model, Tensor plan, int stepIndex);

    /// <summary>Final training loss and held-out metric (synchronises; call after training).</summary>
    public abstract Evaluation Evaluate(nn.Module<Tensor, Tensor> model);

    /// <summary>Frees device data.</summary>
    public void Dispose()
    {
        Dispose(true);
        GC.SuppressFinalize(this);
    }

    /// <summary>Frees device data.</summary>
    protected virtual void Dispose(bool disposing) { }

    /// <summary>Sets TorchSharp's global seed, for model initialisation.</summary>
    protected static void Seed(int seed) => torch.manual_seed(seed);
}
