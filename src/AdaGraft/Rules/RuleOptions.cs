using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Reflection;
using TorchSharp.Modules;

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

    /// <summary>Sets every unset hyperparameter (and the learning rate) from <paramref name="defaults"/>.</summary>
    internal void InheritFrom(RuleOptions defaults)
    {
        if (defaults.GetType() != GetType())
            throw new ArgumentException($"A parameter group's options are {GetType().Name} but this optimizer uses {defaults.GetType().Name}.", nameof(defaults));
        LearningRate ??= defaults.LearningRate;
        foreach (var p in HyperParameters) {
            if (p.GetValue(this) is null) p.SetValue(this, p.GetValue(defaults));
        }
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

    /// <summary>Reads what <see cref="SaveStateDict(BinaryWriter)"/> wrote; validates before changing anything.</summary>
    public override void LoadStateDict(BinaryReader reader)
    {
        var staged = Read(reader);
        if (Stager is null) LoadStateDict(staged);
        else Stager.Stage(this, staged);
    }

    /// <summary>The optimizer that applies a load read through TorchSharp's base class only once all of it was read.</summary>
    internal ILoadStager? Stager { get; set; }

    /// <summary>Reads a saved copy of these options into a new object, validating names and values.</summary>
    internal RuleOptions Read(BinaryReader reader)
    {
        var staged = (RuleOptions)Activator.CreateInstance(GetType())!;
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
        RequireAtLeast(LearningRate, 0, "lr", "pass a non-negative learning rate such as 1e-3.");
}
