namespace AdaGraft.Tests.Grafting;

/// <summary>
/// Misuse is reported with a clear exception before anything changes; the step's contract (one closure
/// evaluation, gradients left alone) and child ownership on disposal.
/// </summary>
public class GraftMisuseTests
{
    // ---------------------------------------------------------------- construction

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(3)]
    public void ChildrenOverDifferentParametersAreRejectedNamingTheIndex(int differing)
    {
        var w = Fixtures.MakeParameters(Fixtures.Shapes);
        var other = w.Select((p, i) => i == differing ? Fixtures.Clone(new[] { p })[0] : p).ToList();
        using var m = GenericSecondMomentOptimizer.Sgd(w, 0.1);
        using var d = GenericSecondMomentOptimizer.Adam(other, 0.1);

        var act = () => new GraftOptimizer(m, d);

        act.Should().Throw<ArgumentException>().WithMessage($"*Parameter {differing} *");
    }

    [Fact]
    public void ChildrenOverDifferentParameterCountsAreRejected()
    {
        var w = Fixtures.MakeParameters(Fixtures.Shapes);
        using var m = GenericSecondMomentOptimizer.Sgd(w, 0.1);
        using var d = GenericSecondMomentOptimizer.Adam(w.Take(3), 0.1);
        using var m2 = optim.SGD(w.Take(2), 0.1);
        using var d2 = optim.Adam(w, 0.1);

        var fewerInD = () => new GraftOptimizer(m, d);
        var fewerInM = () => new GraftOptimizer(m2, d2);

        fewerInD.Should().Throw<ArgumentException>().WithMessage("*4 parameters*3*");
        fewerInM.Should().Throw<ArgumentException>().WithMessage("*2 parameters*4*");
    }

    [Theory]
    [InlineData("paper-adam")]
    [InlineData("torch-adam")]
    public void TheSameInstanceAsMAndDIsRejected(string name)
    {
        var w = Fixtures.MakeParameters(Fixtures.Shapes);
        using var a = ChildCatalog.Make(name, w);

        var act = () => new GraftOptimizer(a, a);

        act.Should().Throw<ArgumentException>().WithMessage("*same optimizer instance*");
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void ADisposedChildIsRejectedWhenBuilding(bool disposeMagnitude)
    {
        var w = Fixtures.MakeParameters(Fixtures.Shapes);
        using var m = GenericSecondMomentOptimizer.Adam(w, 0.01);
        using var d = GenericSecondMomentOptimizer.AdaGrad(w, 0.1);
        (disposeMagnitude ? m : d).Dispose();

        var act = () => new GraftOptimizer(m, d);

        act.Should().Throw<ObjectDisposedException>();
    }

    [Theory]
    [InlineData(true, GraftPath.ClosedForm)]
    [InlineData(false, GraftPath.ClosedForm)]
    [InlineData(true, GraftPath.BlackBox)]
    [InlineData(false, GraftPath.BlackBox)]
    public void ADisposedChildMakesStepThrowWithoutMovingParameters(bool disposeMagnitude, GraftPath path)
    {
        var w = Fixtures.MakeParameters(Fixtures.Shapes);
        using var m = GenericSecondMomentOptimizer.Adam(w, 0.01);
        using var d = GenericSecondMomentOptimizer.AdaGrad(w, 0.1);
        using var graft = new GraftOptimizer(m, d, new GraftOptions { Path = path });
        Fixtures.SetGradients(w, 0);
        graft.step();
        Fixtures.SetGradients(w, 1);
        var before = Fixtures.Snapshot(w);
        (disposeMagnitude ? m : d).Dispose();

        var act = () => graft.step();

        act.Should().Throw<ObjectDisposedException>();
        ExpectEqual(Fixtures.Snapshot(w), before);
    }

    [Theory]
    [InlineData("torch-sgd", "torch-adam")]
    [InlineData("paper-sgd", "torch-adam")]
    [InlineData("torch-sgd", "paper-adam")]
    public void ClosedFormWithABuiltInChildIsRejected(string mName, string dName)
    {
        var w = Fixtures.MakeParameters(Fixtures.Shapes);
        using var m = ChildCatalog.Make(mName, w);
        using var d = ChildCatalog.Make(dName, w);

        var act = () => new GraftOptimizer(m, d, new GraftOptions { Path = GraftPath.ClosedForm });

        act.Should().Throw<ArgumentException>().WithMessage("*closed-form*");
    }

    public static TheoryData<string, GraftOptions> InvalidOptions() => new() {
        { "BlockSize", new GraftOptions { Granularity = GraftGranularity.PerBlock, BlockSize = 0 } },
        { "BlockSize", new GraftOptions { Granularity = GraftGranularity.PerBlock, BlockSize = -4 } },
        { "Epsilon", new GraftOptions { Epsilon = -1 } },
        { "Epsilon", new GraftOptions { Epsilon = double.NaN } },
        { "Epsilon", new GraftOptions { Epsilon = double.PositiveInfinity } },
        { "Epsilon", new GraftOptions { Granularity = GraftGranularity.Global, Epsilon = -1e-12 } },
    };

    [Theory]
    [MemberData(nameof(InvalidOptions))]
    public void InvalidOptionsAreRejectedNamingTheOption(string option, GraftOptions options)
    {
        var w = Fixtures.MakeParameters(Fixtures.Shapes);
        using var m = GenericSecondMomentOptimizer.Sgd(w, 0.1);
        using var d = GenericSecondMomentOptimizer.Adam(w, 0.1);

        var build = () => new GraftOptimizer(m, d, options);
        var validate = () => options.Validate();

        build.Should().Throw<ArgumentOutOfRangeException>().Which.ParamName.Should().Be(option);
        validate.Should().Throw<ArgumentOutOfRangeException>().Which.ParamName.Should().Be(option);
    }

    // ---------------------------------------------------------------- step

    public static TheoryData<string, string, GraftPath> PathCases() => new() {
        { "paper-adam", "paper-heavyball", GraftPath.ClosedForm },
        { "paper-adam", "paper-heavyball", GraftPath.BlackBox },
        { "torch-adam", "torch-heavyball", GraftPath.BlackBox },
    };

    [Theory]
    [MemberData(nameof(PathCases))]
    public void ASparseGradientIsRejectedBeforeAnythingChanges(string mName, string dName, GraftPath path)
    {
        using var graft = Fixtures.Trained(p => ChildCatalog.Graft(mName, dName, p, new GraftOptions { Path = path, OwnsChildren = true }), 1, out var w);
        Fixtures.SetGradients(w, 1);
        // The last parameter that has more than one element gets a sparse gradient; the ones before it stay dense.
        using (var dense = w[2].grad!) {
            w[2].grad = dense.to_sparse();
        }
        using (var g = w[2].grad!) g.is_sparse.Should().BeTrue();
        var before = Fixtures.Snapshot(w);
        var stateBefore = SaveToBytes(graft);

        var act = () => graft.step();

        act.Should().Throw<NotSupportedException>().WithMessage("*sparse*");
        ExpectEqual(Fixtures.Snapshot(w), before);
        SaveToBytes(graft).Should().Equal(stateBefore, "no child may have advanced its state");
    }

    [Theory]
    [InlineData("paper-adam", "paper-sgd")]
    [InlineData("torch-adam", "torch-sgd")]
    public void AddParamGroupIsNotSupported(string mName, string dName)
    {
        var w = Fixtures.MakeParameters(Fixtures.Shapes);
        var extra = Fixtures.MakeParameters(new[] { new long[] { 3 } }, seed: 5);
        var m = ChildCatalog.Make(mName, w);
        var d = ChildCatalog.Make(dName, w);
        using var graft = new GraftOptimizer(m, d, new GraftOptions { OwnsChildren = true });

        var act = () => graft.add_param_group(new ParamGroup { Parameters = extra });

        act.Should().Throw<NotSupportedException>();
        m.ParamGroups.Should().HaveCount(1);
        d.ParamGroups.Should().HaveCount(1);
        graft.parameters().Should().HaveCount(w.Count);
    }

    [Theory]
    [MemberData(nameof(PathCases))]
    public void StepWithAClosureEvaluatesItOnceAndReturnsItsLoss(string mName, string dName, GraftPath path)
    {
        var w = Fixtures.MakeParameters(Fixtures.Shapes);
        var twin = Fixtures.Clone(w);
        using var graft = ChildCatalog.Graft(mName, dName, w, new GraftOptions { Path = path, OwnsChildren = true });
        using var reference = ChildCatalog.Graft(mName, dName, twin, new GraftOptions { Path = path, OwnsChildren = true });

        for (int step = 0; step < 3; step++) {
            int calls = 0;
            double expectedLoss = Loss(twin).item<double>();
            // The reference gets the gradient of Σ(w − 0.5)³ by hand: 3·(w − 0.5)².
            foreach (var p in twin) p.grad = 3 * (p.detach() - 0.5).square();

            var loss = graft.step(() => {
                calls++;
                graft.zero_grad();
                var l = Loss(w);
                l.backward();
                return l;
            });
            reference.step();

            calls.Should().Be(1, "the closure is evaluated exactly once per step");
            loss.Should().NotBeNull();
            loss.item<double>().Should().Be(expectedLoss);
            Fixtures.MaxRelativeDifference(w, twin).Should().BeLessThanOrEqualTo(1e-12, "the step uses the closure's gradients");
        }
        Fixtures.MaxRelativeDifference(w, Fixtures.MakeParameters(Fixtures.Shapes)).Should().BeGreaterThan(1e-3, "the parameters must have moved");
    }

    private static Tensor Loss(IEnumerable<Parameter> ps) =>
        ps.Select(p => (p - 0.5).pow(3).sum()).Aggregate((a, b) => a + b);

    public static TheoryData<string> GradientUntouchedCases() => new() { "closed", "closed-decay", "black-box", "black-box-decay", "black-box-built-in" };

    [Theory]
    [MemberData(nameof(GradientUntouchedCases))]
    public void AStepLeavesTheGradientsUnchanged(string name)
    {
        var w = Fixtures.MakeParameters(Fixtures.Shapes);
        var (m, d, path) = name switch {
            "closed" => ((optim.Optimizer)GenericSecondMomentOptimizer.Sgd(w, 0.1), (optim.Optimizer)GenericSecondMomentOptimizer.Adam(w, 0.01), GraftPath.ClosedForm),
            "closed-decay" => (GenericSecondMomentOptimizer.TorchAdamW(w, 0.01, weight_decay: 0.1, maximize: true), GenericSecondMomentOptimizer.TorchSgd(w, 0.1, momentum: 0.9, weight_decay: 0.1, nesterov: true), GraftPath.ClosedForm),
            "black-box" => (GenericSecondMomentOptimizer.Sgd(w, 0.1), GenericSecondMomentOptimizer.Adam(w, 0.01), GraftPath.BlackBox),
            "black-box-decay" => (GenericSecondMomentOptimizer.TorchAdamW(w, 0.01, weight_decay: 0.1, maximize: true), GenericSecondMomentOptimizer.TorchSgd(w, 0.1, momentum: 0.9, weight_decay: 0.1, nesterov: true), GraftPath.BlackBox),
            _ => (optim.Adam(w, 0.01, weight_decay: 0.1), optim.SGD(w, 0.1, momentum: 0.9, weight_decay: 0.1), GraftPath.BlackBox),
        };
        using var graft = new GraftOptimizer(m, d, new GraftOptions { Path = path, OwnsChildren = true });
        for (int step = 0; step < 3; step++) {
            Fixtures.SetGradients(w, step);
            var gradsBefore = w.Select(p => { using var g = p.grad!; return TestTensors.Values(g); }).ToArray();
            var paramsBefore = Fixtures.Snapshot(w);

            graft.step();

            var gradsAfter = w.Select(p => { using var g = p.grad!; return TestTensors.Values(g); }).ToArray();
            for (int i = 0; i < w.Count; i++) gradsAfter[i].Should().Equal(gradsBefore[i], $"the gradient of tensor {i} must not change");
            Fixtures.Snapshot(w).SelectMany(x => x).Should().NotEqual(paramsBefore.SelectMany(x => x), "the step must have moved the parameters");
        }
    }

    // ---------------------------------------------------------------- disposal

    [Theory]
    [InlineData(GraftPath.ClosedForm)]
    [InlineData(GraftPath.BlackBox)]
    public void DisposeWithOwnsChildrenDisposesBothChildren(GraftPath path)
    {
        var w = Fixtures.MakeParameters(Fixtures.Shapes);
        var m = GenericSecondMomentOptimizer.Adam(w, 0.01);
        var d = GenericSecondMomentOptimizer.AdaGrad(w, 0.1);
        var graft = new GraftOptimizer(m, d, new GraftOptions { Path = path, OwnsChildren = true });
        Fixtures.SetGradients(w, 0);
        graft.step();

        graft.Dispose();

        m.IsDisposed.Should().BeTrue();
        d.IsDisposed.Should().BeTrue();
        var stepM = () => m.step();
        var stepD = () => d.step();
        var stepGraft = () => graft.step();
        stepM.Should().Throw<ObjectDisposedException>();
        stepD.Should().Throw<ObjectDisposedException>();
        stepGraft.Should().Throw<ObjectDisposedException>();
    }

    [Fact]
    public void DisposeWithoutOwnsChildrenLeavesTheChildrenUsable()
    {
        var w = Fixtures.MakeParameters(Fixtures.Shapes);
        using var m = GenericSecondMomentOptimizer.Adam(w, 0.01);
        using var d = GenericSecondMomentOptimizer.AdaGrad(w, 0.1);
        var graft = new GraftOptimizer(m, d);
        Fixtures.SetGradients(w, 0);
        graft.step();

        graft.Dispose();

        m.IsDisposed.Should().BeFalse();
        d.IsDisposed.Should().BeFalse();
        var before = Fixtures.Snapshot(w);
        m.step();
        d.step();
        Fixtures.Snapshot(w).SelectMany(x => x).Should().NotEqual(before.SelectMany(x => x));
    }

    private static void ExpectEqual(double[][] actual, double[][] expected)
    {
        actual.Length.Should().Be(expected.Length);
        for (int i = 0; i < expected.Length; i++) actual[i].Should().Equal(expected[i], $"tensor {i} must not change");
    }

    private static byte[] SaveToBytes(GraftOptimizer graft) => StateBytes.Save(graft.save_state_dict);
}
