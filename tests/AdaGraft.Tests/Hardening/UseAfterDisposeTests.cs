namespace AdaGraft.Tests.Hardening;

/// <summary>
/// Every call on a disposed <see cref="GenericSecondMomentOptimizer"/> or <see cref="GraftOptimizer"/> throws
/// <see cref="ObjectDisposedException"/> and touches nothing: parameters, gradients and files on disk stay as they were.
/// </summary>
public sealed class UseAfterDisposeTests : IDisposable
{
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("adagraft-dispose-");

    public void Dispose() => _dir.Delete(recursive: true);

    public static TheoryData<string> OptimizerCalls() => new() {
        "step", "zero_grad", "save_state_dict(writer)", "save_state_dict(path)", "load_state_dict(reader)",
        "load_state_dict(path)", "load_state_dict(StateDictionary)", "state_dict()", "to(CPU)", "StateOf", "add_param_group",
    };

    public static TheoryData<string> GraftCalls() => new() {
        "step", "zero_grad", "save_state_dict(writer)", "save_state_dict(path)", "load_state_dict(reader)",
        "load_state_dict(path)", "load_state_dict(StateDictionary)", "state_dict()", "to(CPU)",
    };

    [Theory]
    [MemberData(nameof(OptimizerCalls))]
    public void ACallOnADisposedOptimizerThrowsObjectDisposedAndChangesNothing(string call)
    {
        var ps = Fixtures.MakeParameters(Fixtures.Shapes);
        var donorParams = Fixtures.Clone(ps);
        using var donor = OptimizerTable.CreateGeneric("torch-adam", donorParams);
        var opt = OptimizerTable.CreateGeneric("torch-adam", ps);
        Fixtures.Run(opt, ps, 0, 2);
        Fixtures.Run(donor, donorParams, 0, 3);
        string file = Path.Combine(_dir.FullName, "optimizer.bin");
        donor.save_state_dict(file);
        var extra = Fixtures.MakeParameters(new[] { new long[] { 2 } }, seed: 9);
        Fixtures.SetGradients(ps, 2);
        opt.Dispose();

        Expect(call, ps, file, () => {
            switch (call) {
                case "step": opt.step(); break;
                case "zero_grad": opt.zero_grad(); break;
                case "save_state_dict(writer)": opt.save_state_dict(new BinaryWriter(new MemoryStream())); break;
                case "save_state_dict(path)": opt.save_state_dict(file); break;
                case "load_state_dict(reader)": opt.load_state_dict(new BinaryReader(new MemoryStream(File.ReadAllBytes(file)))); break;
                case "load_state_dict(path)": opt.load_state_dict(file); break;
                case "load_state_dict(StateDictionary)": opt.load_state_dict(donor.state_dict()); break;
                case "state_dict()": opt.state_dict(); break;
                case "to(CPU)": opt.to(CPU); break;
                case "StateOf": opt.StateOf(ps[0]); break;
                case "add_param_group": opt.add_param_group(new GenericSecondMomentOptimizer.ParamGroup(extra)); break;
                default: throw new ArgumentOutOfRangeException(nameof(call), call, null);
            }
        });
    }

    [Theory]
    [MemberData(nameof(GraftCalls))]
    public void ACallOnADisposedGraftThrowsObjectDisposedAndChangesNothing(string call)
    {
        foreach (var path in new[] { GraftPath.ClosedForm, GraftPath.BlackBox }) {
            var ps = Fixtures.MakeParameters(Fixtures.Shapes);
            var donorParams = Fixtures.Clone(ps);
            // The children stay alive (OwnsChildren = false): the graft itself must refuse, not its children.
            using var m = GenericSecondMomentOptimizer.HeavyBall(ps, 0.05);
            using var d = GenericSecondMomentOptimizer.Adam(ps, 1);
            var graft = new GraftOptimizer(m, d, new GraftOptions { Path = path });
            using var donor = new GraftOptimizer(GenericSecondMomentOptimizer.HeavyBall(donorParams, 0.05), GenericSecondMomentOptimizer.Adam(donorParams, 1), new GraftOptions { Path = path, OwnsChildren = true });
            Fixtures.Run(graft, ps, 0, 2);
            Fixtures.Run(donor, donorParams, 0, 3);
            string file = Path.Combine(_dir.FullName, $"graft-{path}.bin");
            donor.save_state_dict(file);
            var childState = Support.TestTensors.SaveState(m).Concat(Support.TestTensors.SaveState(d)).ToArray();
            Fixtures.SetGradients(ps, 2);
            graft.Dispose();

            Expect($"{call} ({path})", ps, file, () => {
                switch (call) {
                    case "step": graft.step(); break;
                    case "zero_grad": graft.zero_grad(); break;
                    case "save_state_dict(writer)": graft.save_state_dict(new BinaryWriter(new MemoryStream())); break;
                    case "save_state_dict(path)": graft.save_state_dict(file); break;
                    case "load_state_dict(reader)": graft.load_state_dict(new BinaryReader(new MemoryStream(File.ReadAllBytes(file)))); break;
                    case "load_state_dict(path)": graft.load_state_dict(file); break;
                    case "load_state_dict(StateDictionary)": graft.load_state_dict(donor.state_dict()); break;
                    case "state_dict()": graft.state_dict(); break;
                    case "to(CPU)": graft.to(CPU); break;
                    default: throw new ArgumentOutOfRangeException(nameof(call), call, null);
                }
            });
            Support.TestTensors.SaveState(m).Concat(Support.TestTensors.SaveState(d)).Should().Equal(childState, "the live children's state must not change either");
        }
    }

    /// <summary>Runs <paramref name="act"/> and checks it threw <see cref="ObjectDisposedException"/> and changed nothing.</summary>
    private void Expect(string what, List<Parameter> ps, string file, Action act)
    {
        var parameters = HardeningSupport.RawBytes(ps);
        var gradients = HardeningSupport.GradientBytes(ps);
        var fileBytes = File.ReadAllBytes(file);
        var files = Directory.GetFiles(_dir.FullName).Order(StringComparer.Ordinal).ToArray();

        act.Should().Throw<ObjectDisposedException>($"{what} after Dispose must throw ObjectDisposedException");

        HardeningSupport.ShouldEqualBytes(HardeningSupport.RawBytes(ps), parameters, $"{what}: parameters");
        HardeningSupport.ShouldEqualBytes(HardeningSupport.GradientBytes(ps), gradients, $"{what}: gradients");
        File.ReadAllBytes(file).Should().Equal(fileBytes, $"{what}: the checkpoint on disk");
        Directory.GetFiles(_dir.FullName).Order(StringComparer.Ordinal).Should().Equal(files, $"{what}: no file is created or left behind");
    }
}
