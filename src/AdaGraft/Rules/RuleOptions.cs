using System.Globalization;
using System.Reflection;

namespace AdaGraft.Rules;

/// <summary>
/// Base of every rule's hyperparameters (one instance per parameter group). Options are nullable so that a
/// parameter group can leave any of them unset and inherit the optimizer's defaults, as TorchSharp's own
/// optimizers do. Persistence, inheritance and copying are written once here, over the public nullable
/// properties of the derived class; a rule's options class only declares its properties and <see cref="Validate"/>.
/// </summary>
public abstract class RuleOptions : OptimizerOptions
{
    private static readonly Dictionary<Type, PropertyInfo[]> PropertyCache = new();

    /// <summary>The hyperparameter properties of this options type, in a stable order.</summary>
    internal PropertyInfo[] HyperParameters {
        get {
            lock (PropertyCache) {
                var type = GetType();
                if (!PropertyCache.TryGetValue(type, out var props)) {
                    props = type.GetProperties(BindingFlags.Public | BindingFlags.Instance)
                        .Where(p => p.CanRead && p.CanWrite && p.DeclaringType != typeof(OptimizerOptions)
                                    && Nullable.GetUnderlyingType(p.PropertyType) is Type u
                                    && (u == typeof(double) || u == typeof(bool) || u == typeof(int) || u.IsEnum))
                        .OrderBy(p => p.Name, StringComparer.Ordinal)
                        .ToArray();
                    PropertyCache[type] = props;
                }
                return props;
            }
        }
    }

    /// <summary>
    /// Throws an <see cref="ArgumentException"/> naming the first invalid hyperparameter and how to fix it.
    /// Called with every option set.
    /// </summary>
    public abstract void Validate();

    /// <summary>
    /// The names the preset that built these options gives its arguments, by the canonical names
    /// <see cref="Validate"/> uses (e.g. <c>beta1 → momentum</c> for SGD-style presets), so that errors name what the
    /// user typed; null: the canonical names. Groups inherit it from the defaults; it is not saved.
    /// </summary>
    internal IReadOnlyDictionary<string, string>? ArgumentNames { get; set; }

    /// <summary>
    /// The name of hyperparameter <paramref name="canonical"/> as the preset that built these options calls it (for
    /// error messages in <see cref="Validate"/>): <c>Arg("beta1")</c> is <c>"momentum"</c> in <c>TorchSgd</c>.
    /// </summary>
    protected string Arg(string canonical) =>
        ArgumentNames is not null && ArgumentNames.TryGetValue(canonical, out var name) ? name : canonical;

    /// <summary>
    /// True for the hyperparameters that choose the algorithm rather than tune it: every <c>bool</c> and enum option
    /// (Algorithm 1's convention switches: first- and second-moment scaling, bias correction, ε placement,
    /// preconditioning, Nesterov, decoupled decay, AMSGrad, maximize, momentum placement; a zoo rule's switches).
    /// Numbers (learning rate, betas, ε, weight decay, …) are tuning. A checkpoint whose switches differ from the
    /// target's is refused; its numbers are loaded (see <see cref="SwitchDifferences"/>).
    /// </summary>
    internal static bool IsAlgorithmSwitch(PropertyInfo property)
    {
        var u = Nullable.GetUnderlyingType(property.PropertyType) ?? property.PropertyType;
        return u == typeof(bool) || u.IsEnum;
    }

    /// <summary>
    /// The error for a checkpoint of another algorithm than <paramref name="target"/>, naming each difference (raised
    /// before anything changes). Numeric hyperparameters never cause it: they are loaded from the file.
    /// </summary>
    internal static InvalidDataException AlgorithmMismatch(string target, IReadOnlyList<string> differences) =>
        new($"The checkpoint holds another algorithm than this {target}: {string.Join("; ", differences)}. "
            + "Load it into an optimizer built the same way (the same preset or convention switches; for a graft the same "
            + "children and granularity); learning rates, betas, ε and weight decay may differ and are taken from the file.");

    /// <summary>
    /// The algorithm switches (<see cref="IsAlgorithmSwitch"/>) on which <paramref name="saved"/> differs from these
    /// options, each as "<c>Name: X in the file, Y here</c>"; empty when the algorithm is the same.
    /// </summary>
    internal List<string> SwitchDifferences(RuleOptions saved)
    {
        var differences = new List<string>();
        if (saved.GetType() != GetType()) {
            differences.Add($"options type: {saved.GetType().Name} in the file, {GetType().Name} here");
            return differences;
        }
        foreach (var p in HyperParameters) {
            if (!IsAlgorithmSwitch(p)) continue;
            object? mine = p.GetValue(this), theirs = p.GetValue(saved);
            if (mine is null || Equals(mine, theirs)) continue; // an unset switch is inherited, so takes the file's
            differences.Add($"{p.Name}: {theirs ?? "unset"} in the file, {mine} here");
        }
        return differences;
    }

    /// <summary>Sets every unset hyperparameter (and the learning rate) from <paramref name="defaults"/>.</summary>
    internal void InheritFrom(RuleOptions defaults)
    {
        if (defaults.GetType() != GetType())
            throw new ArgumentException($"A parameter group's options are {GetType().Name} but this optimizer uses {defaults.GetType().Name}.", nameof(defaults));
        LearningRate ??= defaults.LearningRate;
        foreach (var p in HyperParameters) {
            if (p.GetValue(this) is null) p.SetValue(this, p.GetValue(defaults));
        }
        ArgumentNames ??= defaults.ArgumentNames;
        InitialLearningRate = LearningRate ?? 0;
    }

    /// <summary>Checks that every hyperparameter is set.</summary>
    internal void RequireComplete(string paramName)
    {
        if (LearningRate is null)
            throw new ArgumentException("LearningRate is not set; give the optimizer a learning rate.", paramName);
        foreach (var p in HyperParameters) {
            if (p.GetValue(this) is null)
                throw new ArgumentException($"{p.Name} is not set; give the optimizer a default for it.", paramName);
        }
    }

    /// <summary>Copies every hyperparameter from <paramref name="source"/> (same type).</summary>
    public override void LoadStateDict(OptimizerOptions source)
    {
        if (source is not RuleOptions other || other.GetType() != GetType())
            throw new ArgumentException($"Options of type {source?.GetType().Name ?? "null"} cannot be loaded into {GetType().Name}.", nameof(source));
        base.LoadStateDict(source);
        foreach (var p in HyperParameters) p.SetValue(this, p.GetValue(other));
    }

    /// <summary>Writes the learning rates and every hyperparameter, each with its name.</summary>
    public override void SaveStateDict(BinaryWriter writer)
    {
        base.SaveStateDict(writer);
        var props = HyperParameters;
        writer.Write(props.Length);
        foreach (var p in props) {
            writer.Write(p.Name);
            var value = p.GetValue(this) ?? throw new InvalidOperationException($"{p.Name} is not set.");
            writer.Write(Convert.ToDouble(value, CultureInfo.InvariantCulture));
        }
    }

    /// <summary>
    /// Reads what <see cref="SaveStateDict(BinaryWriter)"/> wrote; validates before changing anything. The file's
    /// numbers (learning rate, betas, ε, weight decay, …) replace these, as PyTorch's <c>load_state_dict</c> does; a file
    /// whose algorithm switches differ (<see cref="IsAlgorithmSwitch"/>) raises an <see cref="InvalidDataException"/> naming each difference.
    /// </summary>
    public override void LoadStateDict(BinaryReader reader)
    {
        var staged = Read(reader);
        var differences = SwitchDifferences(staged);
        if (differences.Count > 0) throw AlgorithmMismatch(GetType().Name, differences);
        if (Stager is null) LoadStateDict(staged);
        else Stager.Stage(this, staged);
    }

    /// <summary>The optimizer that applies a load read through TorchSharp's base class only once all of it was read.</summary>
    internal ILoadStager? Stager { get; set; }

    /// <summary>Reads a saved copy of these options into a new object, validating names and values.</summary>
    internal RuleOptions Read(BinaryReader reader)
    {
        var staged = (RuleOptions)Activator.CreateInstance(GetType())!;
        staged.ArgumentNames = ArgumentNames;
        staged.InitialLearningRate = reader.ReadDouble();
        staged.LearningRate = reader.ReadDouble();
        var props = HyperParameters;
        int count = reader.ReadInt32();
        if (count != props.Length)
            throw new InvalidDataException($"The saved options have {count} hyperparameters but {GetType().Name} has {props.Length}: the file was written by another optimizer type or version.");
        foreach (var p in props) {
            string name = reader.ReadString();
            if (name != p.Name)
                throw new InvalidDataException($"The saved options have '{name}' where {GetType().Name} expects '{p.Name}': the file was written by another optimizer type or version.");
            double raw = reader.ReadDouble();
            var u = Nullable.GetUnderlyingType(p.PropertyType)!;
            object value = u == typeof(double) ? raw
                : u == typeof(bool) ? raw != 0
                : u == typeof(int) ? checked((int)raw)
                : Enum.ToObject(u, checked((int)raw));
            p.SetValue(staged, value);
        }
        try {
            staged.Validate();
        } catch (ArgumentException e) {
            throw new InvalidDataException($"The saved options are invalid: {e.Message}", e);
        }
        return staged;
    }

    /// <summary>Checks a value is a finite number at least <paramref name="min"/>.</summary>
    protected static void RequireAtLeast(double? value, double min, string name, string fix)
    {
        if (value is double v && (double.IsNaN(v) || double.IsInfinity(v) || v < min))
            throw new ArgumentOutOfRangeException(name, v, $"{name} must be a finite number ≥ {min.ToString(CultureInfo.InvariantCulture)}; {fix}");
    }

    /// <summary>Checks a value lies in [lo, hi] (or [lo, hi) when <paramref name="hiOpen"/>).</summary>
    protected static void RequireInRange(double? value, double lo, double hi, bool hiOpen, string name, string fix)
    {
        if (value is double v && (double.IsNaN(v) || v < lo || v > hi || (hiOpen && v == hi))) {
            string range = $"[{lo.ToString(CultureInfo.InvariantCulture)}, {hi.ToString(CultureInfo.InvariantCulture)}{(hiOpen ? ")" : "]")}";
            throw new ArgumentOutOfRangeException(name, v, $"{name} must lie in {range}; {fix}");
        }
    }

    /// <summary>Validates the learning rate (finite, ≥ 0).</summary>
    protected void ValidateLearningRate() =>
        RequireAtLeast(LearningRate, 0, Arg("lr"), "pass a non-negative learning rate (lr) such as 1e-3.");
}
