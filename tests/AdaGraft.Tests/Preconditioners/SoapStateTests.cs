namespace AdaGraft.Tests.Preconditioners;

/// <summary>SOAP's state (factors, bases, moments, steps) saved and loaded bit-identically; bad input raises before any change.</summary>
public class SoapStateTests
{
    /// <summary>
    /// save_state_dict after 7 steps (a refresh at Adam step 3 and 6), load into a fresh optimizer built with other
    /// numbers (and moved with to(CPU), where it is), continue both 6 steps (one more refresh): bit-identical. A fresh
    /// optimizer that did not load differs.
    /// </summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void StateRoundTripContinuesBitIdentically(bool mergeDims)
    {
        var w = Fixtures.MakeParameters(SoapTestSupport.Shapes);
        using var original = SoapOptimizer.Create(w, lr: 0.01, precondition_frequency: 3, merge_dims: mergeDims, precondition_1d: true);
        SoapTestSupport.Run(original, w, 7);
        var bytes = SoapTestSupport.Save(original);

        var restoredParams = Fixtures.Clone(w);
        var coldParams = Fixtures.Clone(w);
        using var restored = SoapOptimizer.Create(restoredParams, lr: 0.07, beta1: 0.5, precondition_frequency: 5, merge_dims: mergeDims, precondition_1d: true);
        using var cold = SoapOptimizer.Create(coldParams, lr: 0.01, precondition_frequency: 3, merge_dims: mergeDims, precondition_1d: true);
        SoapTestSupport.Load(restored, bytes);
        SoapTestSupport.Save(restored).Should().Equal(bytes, "the loaded optimizer saves exactly what it loaded");
        var state = restored.StateOf(restoredParams[0]);
        state.Step.Should().Be(7);
        state.Basis(0).Should().NotBeNull();
        restored.to(CPU); // a move to the device it is on changes nothing

        SoapTestSupport.Run(original, w, 6, first: 7);
        SoapTestSupport.Run(restored, restoredParams, 6, first: 7);
        SoapTestSupport.Run(cold, coldParams, 6, first: 7);
        TestTensors.ShouldBeBitIdentical(Fixtures.Snapshot(restoredParams), Fixtures.Snapshot(w), "after loading");
        Fixtures.MaxRelativeDifference(coldParams, w).Should().BeGreaterThan(1e-6, "the state matters");
    }

    [Fact]
    public void ACheckpointOfAnotherAlgorithmOrLayoutIsRefusedBeforeAnyChange()
    {
        var w = Fixtures.MakeParameters(SoapTestSupport.Shapes);
        using var identity = SoapOptimizer.Create(w, identity_basis: true);
        SoapTestSupport.Run(identity, w, 3);
        var target = Fixtures.Clone(w);
        using var soap = SoapOptimizer.Create(target);
        SoapTestSupport.Run(soap, target, 3);
        var before = SoapTestSupport.Save(soap);
        FluentActions.Invoking(() => SoapTestSupport.Load(soap, SoapTestSupport.Save(identity)))
            .Should().Throw<InvalidDataException>().Which.Message.Should().Contain("IdentityBasis");

        using var limited = SoapOptimizer.Create(Fixtures.Clone(w), max_precond_dim: 3);
        SoapTestSupport.Run(limited, limited.Groups.Single().Parameters.ToList(), 3);
        FluentActions.Invoking(() => SoapTestSupport.Load(soap, SoapTestSupport.Save(limited)))
            .Should().Throw<InvalidDataException>("the file's factors have other shapes");
        SoapTestSupport.Save(soap).Should().Equal(before, "nothing changed");
    }

    public static TheoryData<string, string> BadArguments => new() {
        { "beta1", "beta1" }, { "beta2", "beta2" }, { "shampoo_beta", "shampoo_beta" }, { "eps", "eps" },
        { "frequency0", "precondition_frequency" }, { "frequency-1", "precondition_frequency" }, { "dim0", "max_precond_dim" },
    };

    [Theory]
    [MemberData(nameof(BadArguments))]
    public void ABadArgumentIsNamed(string which, string name)
    {
        var w = Fixtures.MakeParameters(SoapTestSupport.Shapes);
        var before = Fixtures.Snapshot(w);
        Action create = which switch {
            "beta1" => () => SoapOptimizer.Create(w, beta1: 1),
            "beta2" => () => SoapOptimizer.Create(w, beta2: 1.5),
            "shampoo_beta" => () => SoapOptimizer.Create(w, shampoo_beta: 1),
            "eps" => () => SoapOptimizer.Create(w, eps: -1e-8),
            "frequency0" => () => SoapOptimizer.Create(w, precondition_frequency: 0),
            "frequency-1" => () => SoapOptimizer.Create(w, precondition_frequency: -1),
            "dim0" => () => SoapOptimizer.Create(w, max_precond_dim: 0),
            _ => throw new ArgumentOutOfRangeException(nameof(which)),
        };
        var ex = create.Should().Throw<ArgumentOutOfRangeException>().Which;
        ex.ParamName.Should().Be(name);
        ex.Message.Should().StartWith(name);
        TestTensors.ShouldBeBitIdentical(Fixtures.Snapshot(w), before);
    }

    /// <summary>
    /// Misuse at a step raises before any tensor or state changes: a bad β or frequency set on a group after
    /// construction, a sparse gradient, a gradient of another shape, and a layout option changed after the bases were
    /// built (on the second tensor, so that the first would have been stepped by a check made too late).
    /// </summary>
    [Theory]
    [InlineData("beta2")]
    [InlineData("frequency")]
    [InlineData("sparse")]
    [InlineData("shape")]
    [InlineData("layout")]
    public void MisuseAtAStepRaisesBeforeAnyChange(string misuse)
    {
        var w = Fixtures.MakeParameters(new[] { new long[] { 4, 3 }, new long[] { 3, 5 } });
        using var soap = SoapOptimizer.Create(w, precondition_frequency: 2);
        SoapTestSupport.Run(soap, w, 3);
        SoapTestSupport.SetGradients(w, 3);
        var group = soap.Groups.Single().Options;
        Type expected = typeof(InvalidOperationException);
        switch (misuse) {
            case "beta2": group.Beta2 = 1; expected = typeof(ArgumentOutOfRangeException); break;
            case "frequency": group.PreconditionFrequency = 0; expected = typeof(ArgumentOutOfRangeException); break;
            case "sparse":
                w[1].grad = torch.zeros(3, 5, dtype: ScalarType.Float64).to_sparse();
                expected = typeof(NotSupportedException);
                break;
            case "shape": w[1].grad = torch.zeros(5, 3, dtype: ScalarType.Float64); break;
            case "layout": group.MaxPreconditionerDim = 4; break; // [3, 5] loses its right basis; [4, 3] keeps both
        }
        var before = Fixtures.Snapshot(w);
        var saved = SoapTestSupport.Save(soap);
        var ex = FluentActions.Invoking(() => soap.step()).Should().Throw<Exception>().Which;
        ex.Should().BeOfType(expected, ex.Message);
        if (misuse == "layout") ex.Message.Should().Contain("max_precond_dim");
        TestTensors.ShouldBeBitIdentical(Fixtures.Snapshot(w), before);
        if (misuse != "beta2" && misuse != "frequency") SoapTestSupport.Save(soap).Should().Equal(saved, "no state changed");
    }

    [Fact]
    public void SkipNonFiniteStepsIsRefusedBeforeAnyChange()
    {
        var w = Fixtures.MakeParameters(SoapTestSupport.Shapes);
        using var soap = SoapOptimizer.Create(w);
        soap.SkipNonFiniteSteps = true;
        SoapTestSupport.SetGradients(w, 0);
        var before = Fixtures.Snapshot(w);
        soap.Invoking(o => o.step()).Should().Throw<NotSupportedException>().Which.Message.Should().Contain("SkipNonFiniteSteps");
        TestTensors.ShouldBeBitIdentical(Fixtures.Snapshot(w), before);
        soap.StateOf(w[0]).FirstMoment.Should().BeNull();
    }
}
