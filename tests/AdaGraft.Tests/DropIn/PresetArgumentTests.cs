using System.Reflection;
using AdaGraft.Rules;
using static TorchSharp.torch.optim;

namespace AdaGraft.Tests.DropIn;

/// <summary>
/// Every preset (paper forms, TorchSharp-compatible forms, the zoo; found by reflection) names the argument the user
/// typed when a value is invalid — at construction, and at a step after a scheduler or the user set a bad value — and
/// takes parameter groups.
/// </summary>
public sealed class PresetArgumentTests
{
    public static TheoryData<string, string, double> InvalidArguments {
        get {
            var data = new TheoryData<string, string, double>();
            foreach (var (preset, method) in Presets.All) {
                foreach (var p in method.GetParameters().Skip(1)) {
                    if (p.ParameterType != typeof(double) && p.ParameterType != typeof(double?)) continue;
                    data.Add(preset, p.Name!, double.NaN);
                    // Every numeric argument refuses −1 except SGD's dampening, which TorchSharp accepts at any value.
                    if (p.Name != "dampening") data.Add(preset, p.Name!, -1);
                }
            }
            return data;
        }
    }

    [Theory]
    [MemberData(nameof(InvalidArguments))]
    public void AnInvalidArgumentIsNamedAsTyped(string preset, string argument, double value)
    {
        var ps = Fixtures.MakeParameters(Fixtures.Shapes);
        var before = Fixtures.Snapshot(ps);
        var ex = FluentActions.Invoking(() => Presets.Invoke(Presets.All[preset], ps, new Dictionary<string, object?> { [argument] = value }))
            .Should().Throw<ArgumentException>().Which;
        ex.ParamName.Should().Be(argument, $"{preset}({argument}: {value}) must name '{argument}'; it said: {ex.Message}");
        ex.Message.Should().StartWith(argument, "the message begins with the argument's name");
        TestTensors.ShouldBeBitIdentical(Fixtures.Snapshot(ps), before);
    }

    [Fact]
    public void ThePresetsFoundIncludeEveryKnownOne()
    {
        Presets.All.Keys.Should().Contain(new[] {
            "GenericSecondMomentOptimizer.Sgd", "GenericSecondMomentOptimizer.HeavyBall", "GenericSecondMomentOptimizer.AdaGrad",
            "GenericSecondMomentOptimizer.RmsProp", "GenericSecondMomentOptimizer.Adam", "GenericSecondMomentOptimizer.TorchSgd",
            "GenericSecondMomentOptimizer.TorchAdam", "GenericSecondMomentOptimizer.TorchAdamW", "GenericSecondMomentOptimizer.TorchAdagrad",
            "GenericSecondMomentOptimizer.TorchRmsProp", "GenericSecondMomentOptimizer.AmsGrad", "YogiOptimizer.Create",
            "LionOptimizer.Create", "LambOptimizer.Create", "LarsOptimizer.Create", "NovoGradOptimizer.Create", "AdafactorOptimizer.Create",
        });
    }

    [Fact]
    public void AValueSetAfterConstructionIsNamedAsThePresetCallsIt()
    {
        var ps = Fixtures.MakeParameters(Fixtures.Shapes);
        using var sgd = GenericSecondMomentOptimizer.TorchSgd(ps, 0.1, momentum: 0.9);
        ((IMomentum)sgd.ParamGroups.Single()).Momentum = -0.5;
        Fixtures.SetGradients(ps, 0);
        sgd.Invoking(o => o.step()).Should().Throw<ArgumentOutOfRangeException>().Which.ParamName.Should().Be("momentum");

        using var rms = GenericSecondMomentOptimizer.TorchRmsProp(Fixtures.Clone(ps), 0.01);
        ((IBetas)rms.ParamGroups.Single()).Betas = (0, -1);
        rms.Invoking(o => o.step()).Should().Throw<ArgumentOutOfRangeException>().Which.ParamName.Should().Be("alpha");

        using var adam = GenericSecondMomentOptimizer.TorchAdam(Fixtures.Clone(ps));
        ((IBetas)adam.ParamGroups.Single()).Betas = (1, 0.999);
        adam.Invoking(o => o.step()).Should().Throw<ArgumentOutOfRangeException>().Which.ParamName.Should().Be("beta1");

        // A group's own options are named as the preset names them too.
        var groups = new[] { new GenericSecondMomentOptimizer.ParamGroup(ps.Take(2), new SecondMomentOptions { Beta1 = double.NaN }) };
        FluentActions.Invoking(() => GenericSecondMomentOptimizer.HeavyBall(groups, 0.1))
            .Should().Throw<ArgumentOutOfRangeException>().Which.ParamName.Should().Be("momentum");
    }

    [Fact]
    public void CenteredRmsPropIsRefusedNamingCentered()
    {
        var ps = Fixtures.MakeParameters(Fixtures.Shapes);
        // The seventh positional argument is TorchSharp's: centered, no longer maximize.
        FluentActions.Invoking(() => GenericSecondMomentOptimizer.TorchRmsProp(ps, 0.01, 0.99, 1e-8, 0, 0, true))
            .Should().Throw<NotSupportedException>().Which.Message.Should().Contain("centered: true");
        var group = new TorchSharp.Modules.RMSProp.ParamGroup(ps, new TorchSharp.Modules.RMSProp.Options { centered = true });
        FluentActions.Invoking(() => GenericSecondMomentOptimizer.TorchRmsProp(new[] { group }))
            .Should().Throw<NotSupportedException>().Which.Message.Should().Contain("centered");
        using var plain = GenericSecondMomentOptimizer.TorchRmsProp(ps, 0.01, 0.99, 1e-8, 0, 0, false, true);
        plain.Defaults.Maximize.Should().BeTrue("maximize is the eighth argument, as in TorchSharp");
    }

    // ---------------- Parameter groups ----------------

    /// <summary>
    /// Each preset's group overload (found by reflection): two groups, the second with its own learning rate, equal
    /// two optimizers built by the preset over each group's parameters, step for step.
    /// </summary>
    [Theory]
    [MemberData(nameof(Presets.GroupFormNames), MemberType = typeof(Presets))]
    public void APresetTakesParameterGroups(string preset)
    {
        var method = Presets.All[preset];
        var host = method.DeclaringType!;
        // The optimizer's own nested group type, or (zoo optimizers) the group type of the preset's group overload.
        var groupType = host.GetNestedType("ParamGroup") ?? host.GetMethods().Where(m => m.Name == method.Name)
            .Select(m => m.GetParameters()[0].ParameterType)
            .Where(t => t.IsGenericType && t.GetGenericTypeDefinition() == typeof(IEnumerable<>))
            .Select(t => t.GenericTypeArguments[0])
            .Single(t => t.IsGenericType && t.GetGenericTypeDefinition() == typeof(MomentParamGroup<>));
        var grouped = Presets.Overload(host, method.Name, typeof(IEnumerable<>).MakeGenericType(groupType));
        grouped.Should().NotBeNull($"{preset} must have an overload over IEnumerable<{host.Name}.ParamGroup>");
        string lrName = Presets.LearningRateName(method);
        double lr = Presets.DefaultLearningRate(method);

        var shapes = Presets.ShapesFor(preset);
        var all = Fixtures.MakeParameters(shapes);
        var first = Fixtures.Clone(all.Take(2));
        var second = Fixtures.Clone(all.Skip(2));
        var optionsType = groupType.BaseType!.GetGenericArguments().Last();
        var secondOptions = (RuleOptions)Activator.CreateInstance(optionsType)!;
        secondOptions.LearningRate = lr * 3;
        var groups = Array.CreateInstance(groupType, 2);
        groups.SetValue(Activator.CreateInstance(groupType, all.Take(2), null), 0);
        groups.SetValue(Activator.CreateInstance(groupType, all.Skip(2), secondOptions), 1);

        using var together = (optim.Optimizer)Presets.Invoke(grouped!, groups);
        using var a = (optim.Optimizer)Presets.Invoke(method, first);
        using var b = (optim.Optimizer)Presets.Invoke(method, second, new Dictionary<string, object?> { [lrName] = lr * 3 });
        together.ParamGroups.Select(g => g.LearningRate).Should().Equal(lr, lr * 3);
        var separate = first.Concat(second).ToList();
        for (int step = 0; step < 10; step++) {
            Fixtures.StepAll(step, new[] { all, separate }, together, a, b);
        }
        Fixtures.MaxRelativeDifference(all, separate).Should().BeLessThanOrEqualTo(1e-14);
        Fixtures.MaxRelativeDifference(all, Fixtures.MakeParameters(shapes)).Should().BeGreaterThan(1e-4, "the parameters moved");
    }

    /// <summary>
    /// Each TorchSharp-compatible preset over TorchSharp's own parameter groups (and over <c>named_parameters()</c>)
    /// equals the built-in over the same groups: float64, 1e-10, 20 steps; the second group sets only its learning rate.
    /// </summary>
    [Theory]
    [MemberData(nameof(Presets.TorchNames), MemberType = typeof(Presets))]
    public void ADropInTakesTorchSharpsParameterGroupsAndNamedParameters(string preset)
    {
        var (host, name, factory) = Presets.TorchRow(preset);
        var theirsFactory = Presets.TorchFactory(factory);
        var groupsParameter = typeof(optim).GetMethods(BindingFlags.Public | BindingFlags.Static)
            .Where(m => m.Name == factory).Select(m => m.GetParameters()[0].ParameterType)
            .Single(t => t.GenericTypeArguments[0].IsSubclassOf(typeof(TorchSharp.Modules.ParamGroup)));
        var groupType = groupsParameter.GenericTypeArguments[0];
        var optionsType = groupType.BaseType!.GetGenericArguments().Single();
        var theirsGrouped = Presets.TorchFactory(factory, groupsParameter);
        var oursGrouped = Presets.Overload(host, name, groupsParameter)!;
        var oursNamed = Presets.Overload(host, name, typeof(IEnumerable<(string, Parameter)>))!;
        double lr = Presets.DefaultLearningRate(theirsFactory);

        object Groups(List<Parameter> ps)
        {
            var second = (OptimizerOptions)Activator.CreateInstance(optionsType)!;
            second.LearningRate = lr * 3;
            var groups = Array.CreateInstance(groupType, 2);
            groups.SetValue(Activator.CreateInstance(groupType, ps.Take(2), null), 0);
            groups.SetValue(Activator.CreateInstance(groupType, ps.Skip(2), second), 1);
            return groups;
        }

        var a = Fixtures.MakeParameters(Fixtures.Shapes);
        var b = Fixtures.Clone(a);
        var c = Fixtures.Clone(a);
        var d = Fixtures.Clone(a);
        using var ours = (optim.Optimizer)Presets.Invoke(oursGrouped, Groups(a));
        using var theirs = (optim.Optimizer)Presets.Invoke(theirsGrouped, Groups(b));
        using var named = (optim.Optimizer)Presets.Invoke(oursNamed, c.Select((p, i) => ($"p{i}", p)).ToList());
        using var plain = (optim.Optimizer)Presets.Invoke(theirsFactory, d);
        ours.ParamGroups.Select(g => g.LearningRate).Should().Equal(lr, lr * 3);
        for (int step = 0; step < 20; step++) {
            foreach (var ps in new[] { a, b, c, d }) Fixtures.SetGradients(ps, step);
            ours.step();
            theirs.step();
            named.step();
            plain.step();
        }
        Fixtures.MaxRelativeDifference(a, b).Should().BeLessThanOrEqualTo(1e-10, "groups as in TorchSharp");
        Fixtures.MaxRelativeDifference(c, d).Should().BeLessThanOrEqualTo(1e-10, "named parameters as in TorchSharp");
        Fixtures.MaxRelativeDifference(a, c).Should().BeGreaterThan(1e-6, "the second group's own learning rate took effect");
    }
}
