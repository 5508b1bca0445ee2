namespace AdaGraft.Tests.Grafting;

/// <summary>
/// Saving a graft and loading it into a fresh graft resumes the run bit for bit; loading a state saved by an
/// incompatible graft throws <see cref="InvalidDataException"/> and changes nothing.
/// </summary>
public class GraftStateTests
{
    private const int StepsBefore = 5;
    private const int StepsAfter = 5;

    public static TheoryData<string, string, GraftGranularity, GraftPath, bool> ResumeCases()
    {
        var data = new TheoryData<string, string, GraftGranularity, GraftPath, bool>();
        var pairs = new[] {
            ("paper-adagrad", "paper-adam", GraftPath.ClosedForm),
            ("torch-heavyball", "torch-adam", GraftPath.BlackBox),
        };
        foreach (var (m, d, path) in pairs)
            foreach (var g in new[] { GraftGranularity.PerTensor, GraftGranularity.Global })
                foreach (var toFile in new[] { false, true })
                    data.Add(m, d, g, path, toFile);
        return data;
    }

    private static GraftOptimizer MakeGraft(string m, string d, IList<Parameter> w, GraftGranularity g, GraftPath path) =>
        new(ChildCatalog.Make(m, w), ChildCatalog.Make(d, w), new GraftOptions { Granularity = g, Path = path, OwnsChildren = true });

    [Theory]
    [MemberData(nameof(ResumeCases))]
    public void SaveLoadAndContinueIsBitIdenticalToAnUninterruptedRun(string m, string d, GraftGranularity g, GraftPath path, bool toFile)
    {
        // Uninterrupted reference run.
        var reference = Fixtures.MakeParameters(Fixtures.Shapes);
        using (var graft = MakeGraft(m, d, reference, g, path)) {
            Fixtures.Run(graft, reference, 0, StepsBefore + StepsAfter);
        }

        // Interrupted run: k steps, save.
        var w = Fixtures.MakeParameters(Fixtures.Shapes);
        byte[] saved;
        string? file = null;
        using (var graft = MakeGraft(m, d, w, g, path)) {
            graft.IsClosedForm.Should().Be(path == GraftPath.ClosedForm);
            Fixtures.Run(graft, w, 0, StepsBefore);
            saved = SaveToBytes(graft);
            if (toFile) {
                file = Path.Combine(Path.GetTempPath(), $"graft-state-{Guid.NewGuid():N}.bin");
                graft.save_state_dict(file);
            }
        }

        try {
            // Fresh children over clones of the current parameters, then load and continue.
            var resumed = Fixtures.Clone(w);
            using (var graft = MakeGraft(m, d, resumed, g, path)) {
                if (toFile) {
                    graft.load_state_dict(file!);
                } else {
                    using var reader = new BinaryReader(new MemoryStream(saved));
                    graft.load_state_dict(reader);
                }
                SaveToBytes(graft).Should().Equal(saved, "the loaded graft holds exactly the saved state");
                Fixtures.Run(graft, resumed, StepsBefore, StepsAfter);
            }
            var expected = Fixtures.Snapshot(reference);
            var actual = Fixtures.Snapshot(resumed);
            for (int i = 0; i < expected.Length; i++)
                actual[i].Should().Equal(expected[i], $"tensor {i} must be bit-identical to the uninterrupted run");

            // Without the loaded state the continuation differs: the state is what the test is about.
            var fresh = Fixtures.Clone(w);
            using (var graft = MakeGraft(m, d, fresh, g, path)) {
                Fixtures.Run(graft, fresh, StepsBefore, StepsAfter);
            }
            Fixtures.MaxRelativeDifference(fresh, reference).Should().BeGreaterThan(1e-6);
        } finally {
            if (file is not null) File.Delete(file);
        }
    }

    [Theory]
    [InlineData("paper-adagrad", "paper-adam", GraftPath.ClosedForm, GraftGranularity.PerTensor, GraftGranularity.Global)]
    [InlineData("paper-adagrad", "paper-adam", GraftPath.ClosedForm, GraftGranularity.Global, GraftGranularity.PerTensor)]
    [InlineData("paper-adagrad", "paper-adam", GraftPath.ClosedForm, GraftGranularity.PerTensor, GraftGranularity.PerBlock)]
    [InlineData("torch-heavyball", "torch-adam", GraftPath.BlackBox, GraftGranularity.PerTensor, GraftGranularity.Global)]
    [InlineData("torch-heavyball", "torch-adam", GraftPath.BlackBox, GraftGranularity.Global, GraftGranularity.PerTensor)]
    public void LoadingIntoAnotherGranularityThrowsAndChangesNothing(string m, string d, GraftPath path, GraftGranularity savedWith, GraftGranularity loadInto)
    {
        var saved = ChildCatalog.SavedGraft(m, d, new GraftOptions { Granularity = savedWith, Path = path, BlockSize = 4, OwnsChildren = true }, 3);

        var w = Fixtures.MakeParameters(Fixtures.Shapes, seed: 2);
        using var target = ChildCatalog.Graft(m, d, w, new GraftOptions { Granularity = loadInto, Path = path, BlockSize = 4, OwnsChildren = true });
        Fixtures.Run(target, w, 10, 2);
        ExpectRejected(target, w, saved);
    }

    [Fact]
    public void LoadingIntoAnotherBlockSizeThrowsAndChangesNothing()
    {
        var saved = ChildCatalog.SavedGraft("paper-adagrad", "paper-adam", new GraftOptions { Granularity = GraftGranularity.PerBlock, BlockSize = 4, OwnsChildren = true }, 3);

        var w = Fixtures.MakeParameters(Fixtures.Shapes, seed: 2);
        using var target = ChildCatalog.Graft("paper-adagrad", "paper-adam", w, new GraftOptions { Granularity = GraftGranularity.PerBlock, BlockSize = 8, OwnsChildren = true });
        Fixtures.Run(target, w, 10, 2);
        ExpectRejected(target, w, saved);
    }

    [Theory]
    // M's type differs.
    [InlineData("torch-heavyball", "torch-adam", "torch-adam", "torch-adam")]
    [InlineData("paper-adagrad", "paper-adam", "torch-adagrad", "paper-adam")]
    // M's type matches, D's differs (M's part is read first and must not be applied).
    [InlineData("torch-heavyball", "torch-adam", "torch-heavyball", "torch-adagrad")]
    [InlineData("paper-adagrad", "paper-adam", "paper-adagrad", "torch-adam")]
    // M and D swapped.
    [InlineData("torch-heavyball", "torch-adam", "torch-adam", "torch-heavyball")]
    public void LoadingIntoChildrenOfAnotherTypeThrowsAndChangesNothing(string savedM, string savedD, string targetM, string targetD)
    {
        var saved = ChildCatalog.SavedGraft(savedM, savedD, new GraftOptions { Path = GraftPath.BlackBox, OwnsChildren = true }, 3);

        var w = Fixtures.MakeParameters(Fixtures.Shapes, seed: 2);
        using var target = ChildCatalog.Graft(targetM, targetD, w, new GraftOptions { Path = GraftPath.BlackBox, OwnsChildren = true });
        Fixtures.Run(target, w, 10, 2);
        ExpectRejected(target, w, saved);
    }

    [Theory]
    [InlineData(GraftPath.ClosedForm)]
    [InlineData(GraftPath.BlackBox)]
    public void LoadingAStateOfParametersWithOtherShapesThrowsAndChangesNothing(GraftPath path)
    {
        var saved = ChildCatalog.SavedGraft("paper-adagrad", "paper-adam", new GraftOptions { Path = path, OwnsChildren = true }, 3);

        // Same count of tensors, same element count for the last one, different shapes.
        var shapes = new[] { new long[] { 7 }, new long[] { 5, 3 }, new long[] { 4, 3, 2 }, new long[] { 1 } };
        var w = Fixtures.MakeParameters(shapes, seed: 2);
        using var target = ChildCatalog.Graft("paper-adagrad", "paper-adam", w, new GraftOptions { Path = path, OwnsChildren = true });
        Fixtures.Run(target, w, 10, 2);
        ExpectRejected(target, w, saved);
    }

    [Theory]
    [InlineData("paper-adagrad", "paper-adam")]
    [InlineData("torch-heavyball", "torch-adam")]
    [InlineData("paper-adagrad", "torch-adam")]
    public void LoadingATruncatedStateThrowsAndChangesNothing(string m, string d)
    {
        var saved = ChildCatalog.SavedGraft(m, d, new GraftOptions { Path = GraftPath.BlackBox, OwnsChildren = true }, 3);

        var w = Fixtures.MakeParameters(Fixtures.Shapes, seed: 2);
        using var target = ChildCatalog.Graft(m, d, w, new GraftOptions { Path = GraftPath.BlackBox, OwnsChildren = true });
        Fixtures.Run(target, w, 10, 2);
        foreach (int length in new[] { 0, 5, 30, saved.Length / 2, saved.Length - 1 })
            ExpectRejected(target, w, saved.AsSpan(0, length).ToArray());
    }

    private static void ExpectRejected(GraftOptimizer target, IList<Parameter> w, byte[] saved)
    {
        var stateBefore = SaveToBytes(target);
        var paramsBefore = Fixtures.Snapshot(w);
        stateBefore.Should().NotEqual(saved, "the target must hold a different state, or 'unchanged' proves nothing");

        var act = () => {
            using var reader = new BinaryReader(new MemoryStream(saved));
            target.load_state_dict(reader);
        };
        act.Should().Throw<InvalidDataException>();

        SaveToBytes(target).Should().Equal(stateBefore, "a rejected load must not change the graft's state");
        var paramsAfter = Fixtures.Snapshot(w);
        for (int i = 0; i < paramsBefore.Length; i++) paramsAfter[i].Should().Equal(paramsBefore[i]);
    }

    private static byte[] SaveToBytes(GraftOptimizer graft) => StateBytes.Save(graft.save_state_dict);
}
