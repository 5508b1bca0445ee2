namespace AdaGraft.Tests;

/// <summary>
/// One table of optimizer configurations (in the spirit of PyTorch's <c>OptimizerInfo</c>): every preset of
/// <see cref="GenericSecondMomentOptimizer"/>, by name. Generic tests run over all of them.
/// </summary>
public static class OptimizerCatalog
{
    private static readonly (string Name, Func<IEnumerable<Parameter>, GenericSecondMomentOptimizer> Factory)[] Entries = {
        // The paper's forms (ε = 0 pseudoinverse, no (1−β) scaling except Adam).
        ("sgd", ps => GenericSecondMomentOptimizer.Sgd(ps, 0.05)),
        ("heavy-ball", ps => GenericSecondMomentOptimizer.HeavyBall(ps, 0.05)),
        ("adagrad", ps => GenericSecondMomentOptimizer.AdaGrad(ps, 0.05)),
        ("rmsprop", ps => GenericSecondMomentOptimizer.RmsProp(ps, 0.01)),
        ("adam", ps => GenericSecondMomentOptimizer.Adam(ps, 0.01)),
        // The TorchSharp-compatible forms.
        ("torch-sgd-nesterov", ps => GenericSecondMomentOptimizer.TorchSgd(ps, 0.05, momentum: 0.9, nesterov: true)),
        ("torch-adam", ps => GenericSecondMomentOptimizer.TorchAdam(ps, lr: 0.01)),
        ("torch-adam-amsgrad", ps => GenericSecondMomentOptimizer.TorchAdam(ps, lr: 0.01, amsgrad: true)),
        ("torch-adamw", ps => GenericSecondMomentOptimizer.TorchAdamW(ps, lr: 0.01, weight_decay: 0.1)),
        ("torch-adagrad", ps => GenericSecondMomentOptimizer.TorchAdagrad(ps, lr: 0.1)),
        ("torch-rmsprop-momentum", ps => GenericSecondMomentOptimizer.TorchRmsProp(ps, lr: 0.01, momentum: 0.9)),
    };

    /// <summary>Every configuration: name → factory over a parameter list.</summary>
    public static readonly IReadOnlyDictionary<string, Func<IEnumerable<Parameter>, GenericSecondMomentOptimizer>> Factories =
        Entries.ToDictionary(e => e.Name, e => e.Factory, StringComparer.Ordinal);

    /// <summary>The names of every configuration (for <c>[MemberData]</c>).</summary>
    public static TheoryData<string> Names {
        get {
            var data = new TheoryData<string>();
            foreach (var (name, _) in Entries) data.Add(name);
            return data;
        }
    }

    /// <summary>The configurations whose β1 (momentum) is positive, read from the optimizer each factory builds.</summary>
    public static TheoryData<string> NamesWithMomentum {
        get {
            var data = new TheoryData<string>();
            foreach (var (name, factory) in Entries) {
                if (TestTensors.DefaultsOf(factory).Beta1 > 0) data.Add(name);
            }
            return data;
        }
    }

    /// <summary>Builds configuration <paramref name="name"/> over <paramref name="parameters"/>.</summary>
    public static GenericSecondMomentOptimizer Create(string name, IEnumerable<Parameter> parameters) => Factories[name](parameters);
}
