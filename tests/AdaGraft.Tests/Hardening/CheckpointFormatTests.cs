using static AdaGraft.Tests.Support.StateBytes;

namespace AdaGraft.Tests.Hardening;

/// <summary>
/// Every AdaGraft checkpoint starts with a tag and a format version, and loading through any reference type either
/// works or raises one <see cref="InvalidDataException"/> that names what the file holds — never garbage values.
/// TorchSharp's <c>OptimizerHelper.save_state_dict</c>/<c>load_state_dict(BinaryReader)</c> are not virtual, so a call
/// through that reference runs TorchSharp's own code and its generic format; both formats and both references are
/// checked here for a rule-based optimizer and for a graft.
/// </summary>
public sealed class CheckpointFormatTests
{
    private static GraftOptimizer MakeGraft(List<Parameter> ps) =>
        new(GenericSecondMomentOptimizer.HeavyBall(ps, 0.02), GenericSecondMomentOptimizer.TorchAdam(ps, 0.01), new GraftOptions { OwnsChildren = true });

    [Fact]
    public void ACheckpointStartsWithTheTagAndTheFormatVersion()
    {
        var ps = Fixtures.MakeParameters(Fixtures.Shapes);
        using var opt = GenericSecondMomentOptimizer.TorchAdam(ps);
        using var graft = MakeGraft(Fixtures.Clone(ps));
        foreach (var (bytes, type) in new[] { (Save(opt.save_state_dict), "GenericSecondMomentOptimizer"), (Save(graft.save_state_dict), "GraftOptimizer") }) {
            using var reader = new BinaryReader(new MemoryStream(bytes));
            reader.ReadString().Should().Be("AdaGraft checkpoint: " + type);
            reader.ReadInt32().Should().Be(Checkpoint.FormatVersion).And.Be(2);
        }
    }

    [Fact]
    public void ARuleOptimizerLoadsBothFormatsThroughBothReferences()
    {
        using var source = Fixtures.Trained(p => GenericSecondMomentOptimizer.TorchAdam(p, 0.01), 3, out var ps);
        var tagged = Save(source.save_state_dict);
        var generic = Save(((OptimizerHelper)source).save_state_dict);
        tagged.Should().NotEqual(generic);

        // Own reference: both formats load, bit for bit.
        foreach (var bytes in new[] { tagged, generic }) {
            using var target = GenericSecondMomentOptimizer.TorchAdam(Fixtures.Clone(ps), 0.01);
            Load(bytes, target.load_state_dict);
            Save(target.save_state_dict).Should().Equal(tagged);
        }

        // Base reference: the generic format loads; the tagged one raises TorchSharp's error naming the tag.
        using (var target = GenericSecondMomentOptimizer.TorchAdam(Fixtures.Clone(ps), 0.01)) {
            Load(generic, ((OptimizerHelper)target).load_state_dict);
            Save(target.save_state_dict).Should().Equal(tagged);
        }
        using (var target = GenericSecondMomentOptimizer.TorchAdam(Fixtures.Clone(ps), 0.01)) {
            RefusedMessage(tagged, ((OptimizerHelper)target).load_state_dict, target.save_state_dict)
                .Should().Contain("AdaGraft checkpoint: GenericSecondMomentOptimizer");
        }
    }

    [Fact]
    public void AGraftLoadsItsOwnFormatOrRaisesNamingWhatTheFileHolds()
    {
        using var source = Fixtures.Trained(MakeGraft, 3, out var ps);
        var tagged = Save(source.save_state_dict);
        var generic = Save(((OptimizerHelper)source).save_state_dict);

        // Own reference, own format: round trip, and the continued run equals the uninterrupted one.
        var resumed = Fixtures.Clone(ps);
        using (var target = MakeGraft(resumed)) {
            Load(tagged, target.load_state_dict);
            Save(target.save_state_dict).Should().Equal(tagged);
            Fixtures.Run(source, ps, 3, 3);
            Fixtures.Run(target, resumed, 3, 3);
            TestTensors.ShouldBeBitIdentical(Fixtures.Snapshot(resumed), Fixtures.Snapshot(ps));
        }

        // Own reference, generic format: one clear error, nothing changed, no garbage values.
        using (var target = MakeGraft(Fixtures.Clone(ps))) {
            RefusedMessage(generic, target.load_state_dict, target.save_state_dict)
                .Should().Contain("TorchSharp's generic optimizer format").And.Contain("OptimizerHelper").And.NotContain("granularity");
        }

        // Base reference, own format: TorchSharp's loader stops at the tag and names it.
        using (var target = MakeGraft(Fixtures.Clone(ps))) {
            RefusedMessage(tagged, ((OptimizerHelper)target).load_state_dict, target.save_state_dict)
                .Should().Contain("AdaGraft checkpoint: GraftOptimizer");
        }
    }

    [Fact]
    public void AGraftSavedAndLoadedThroughTheBaseReferenceResumesBitForBit()
    {
        using var source = Fixtures.Trained(MakeGraft, 3, out var ps);
        var generic = Save(((OptimizerHelper)source).save_state_dict);
        var resumed = Fixtures.Clone(ps);
        using var target = MakeGraft(resumed);
        Load(generic, ((OptimizerHelper)target).load_state_dict);
        Save(target.save_state_dict).Should().Equal(Save(source.save_state_dict));
        Fixtures.Run(source, ps, 3, 3);
        Fixtures.Run(target, resumed, 3, 3);
        TestTensors.ShouldBeBitIdentical(Fixtures.Snapshot(resumed), Fixtures.Snapshot(ps));
    }

    [Fact]
    public void ACheckpointOfAnotherTypeOrANewerFormatIsRefusedByName()
    {
        var ps = Fixtures.MakeParameters(Fixtures.Shapes);
        using var opt = GenericSecondMomentOptimizer.TorchAdam(ps);
        using var graft = MakeGraft(Fixtures.Clone(ps));
        var optBytes = Save(opt.save_state_dict);
        var graftBytes = Save(graft.save_state_dict);

        FluentActions.Invoking(() => Load(graftBytes, opt.load_state_dict))
            .Should().Throw<InvalidDataException>().Which.Message.Should().Contain("holds a GraftOptimizer checkpoint");
        FluentActions.Invoking(() => Load(optBytes, graft.load_state_dict))
            .Should().Throw<InvalidDataException>().Which.Message.Should().Contain("holds a GenericSecondMomentOptimizer checkpoint");

        // The version is the Int32 right after the tag string.
        int versionAt = 1 + System.Text.Encoding.UTF8.GetByteCount("AdaGraft checkpoint: GenericSecondMomentOptimizer");
        var newer = (byte[])optBytes.Clone();
        BitConverter.GetBytes(3).CopyTo(newer, versionAt);
        FluentActions.Invoking(() => Load(newer, opt.load_state_dict))
            .Should().Throw<InvalidDataException>().Which.Message.Should().Contain("format version 3").And.Contain("newer AdaGraft");
    }

    [Fact]
    public void AGraftStoresEachChildAsThatChildsOwnCheckpoint()
    {
        using var graft = Fixtures.Trained(MakeGraft, 2, out var ps);
        var bytes = Save(graft.save_state_dict);
        var (_, m, d) = StateFileLayout.OfGraft(bytes);
        var mBytes = Save(((IOptimizerCheckpoint)graft.Magnitude).SaveCheckpoint);
        var dBytes = Save(((IOptimizerCheckpoint)graft.Direction).SaveCheckpoint);
        bytes.AsSpan(m.Start, m.Length).ToArray().Should().Equal(mBytes);
        bytes.AsSpan(d.Start, d.Length).ToArray().Should().Equal(dBytes);
    }
}

/// <summary>
/// TorchSharp's <c>OptimizerHelper.to(Device)</c> is not virtual either: through that reference a graft must still
/// move both children's state (checked by moving to the meta device, which every build has).
/// </summary>
public sealed class MoveThroughTheBaseReferenceTests
{
    [Fact]
    public void AGraftMovedThroughAnOptimizerHelperReferenceMovesBothChildren()
    {
        var ps = Fixtures.MakeParameters(Fixtures.Shapes);
        using var m = GenericSecondMomentOptimizer.HeavyBall(ps, 0.02);
        using var d = GenericSecondMomentOptimizer.TorchAdam(ps, 0.01);
        using var graft = new GraftOptimizer(m, d);
        Fixtures.SetGradients(ps, 0);
        graft.step();
        var meta = new Device(DeviceType.META);
        ((OptimizerHelper)graft).to(meta);
        m.StateOf(ps[0]).FirstMoment!.device_type.Should().Be(DeviceType.META);
        d.StateOf(ps[0]).SecondMoment!.device_type.Should().Be(DeviceType.META);
        d.StateOf(ps[^1]).FirstMoment!.device_type.Should().Be(DeviceType.META);
    }
}
