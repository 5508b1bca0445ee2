namespace AdaGraft.Tests.Hardening;

/// <summary>
/// Checkpoints: a save that fails part-way leaves the previous file intact and no temporary file behind; a graft
/// file whose child section is cut short is rejected before anything changes; and a graft over any pair of a few
/// catalog configurations resumes bit-identically from its saved state.
/// </summary>
public sealed class CheckpointTests : IDisposable
{
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("adagraft-checkpoint-");

    public void Dispose() => _dir.Delete(recursive: true);

    // ---------------------------------------------------------------- a crash during the save

    public static TheoryData<string> Failures() => new() { "IOException", "InvalidOperationException", "UnauthorizedAccessException" };

    private static Exception Make(string failure) => failure switch {
        "IOException" => new IOException("disk full (simulated)"),
        "InvalidOperationException" => new InvalidOperationException("serializer failure (simulated)"),
        _ => new UnauthorizedAccessException("permission lost (simulated)"),
    };

    [Theory]
    [MemberData(nameof(Failures))]
    public void ASaveThatFailsPartWayLeavesThePreviousCheckpointIntactAndNoTemporaryFile(string failure)
    {
        using var graft = Fixtures.Trained(p => new GraftOptimizer(GenericSecondMomentOptimizer.HeavyBall(p, 0.05), GenericSecondMomentOptimizer.Adam(p, 1), new GraftOptions { OwnsChildren = true }), 3, out var ps);
        string file = Path.Combine(_dir.FullName, "checkpoint.bin");
        graft.save_state_dict(file);
        var previous = File.ReadAllBytes(file);
        var error = Make(failure);

        var crash = () => AtomicFile.Write(file, writer => {
            writer.Write(new byte[previous.Length / 2]);
            writer.Write("half of a new checkpoint");
            writer.Flush();
            throw error;
        });

        crash.Should().Throw<Exception>().Which.Should().BeSameAs(error, "the writer's own exception reaches the caller");
        File.ReadAllBytes(file).Should().Equal(previous, "the previous checkpoint must be byte-identical");
        Directory.GetFiles(_dir.FullName).Should().Equal(new[] { file }, "no temporary file may be left behind");

        // And it still loads and resumes.
        var resumed = Fixtures.Clone(ps);
        using var resumedGraft = new GraftOptimizer(GenericSecondMomentOptimizer.HeavyBall(resumed, 0.05), GenericSecondMomentOptimizer.Adam(resumed, 1), new GraftOptions { OwnsChildren = true });
        resumedGraft.load_state_dict(file);
        HardeningSupport.SaveToBytes(resumedGraft).Should().Equal(HardeningSupport.SaveToBytes(graft));
    }

    [Fact]
    public void ASaveWritesATemporaryFileBesideTheTargetAndRenamesIt()
    {
        using var opt = Fixtures.Trained(p => OptimizerTable.CreateGeneric("torch-adam", p), 2, out var ps);
        string file = Path.Combine(_dir.FullName, "optimizer.bin");
        opt.save_state_dict(file);
        var previous = File.ReadAllBytes(file);
        Fixtures.Run(opt, ps, 2, 1);
        var expected = HardeningSupport.SaveToBytes(opt);

        string[]? duringWrite = null;
        byte[]? targetDuringWrite = null;
        AtomicFile.Write(file, writer => {
            writer.Write(expected.AsSpan(0, 10));
            writer.Flush();
            duringWrite = Directory.GetFiles(_dir.FullName);
            targetDuringWrite = File.ReadAllBytes(file);
            writer.Write(expected.AsSpan(10));
        });

        duringWrite.Should().HaveCount(2, "the new state is written to a second file in the same folder (so the rename is atomic)");
        duringWrite!.Single(f => f != file).Should().StartWith(file, "the temporary file is named after the target");
        targetDuringWrite.Should().Equal(previous, "the target keeps the previous checkpoint until the rename");
        File.ReadAllBytes(file).Should().Equal(expected);
        Directory.GetFiles(_dir.FullName).Should().Equal(new[] { file });
    }

    [Theory]
    [InlineData(GraftPath.ClosedForm)]
    [InlineData(GraftPath.BlackBox)]
    public void ASaveOfADisposedOptimizerLeavesThePreviousCheckpointIntact(GraftPath path)
    {
        var ps = Fixtures.MakeParameters(Fixtures.Shapes);
        var graft = new GraftOptimizer(GenericSecondMomentOptimizer.HeavyBall(ps, 0.05), GenericSecondMomentOptimizer.Adam(ps, 1), new GraftOptions { Path = path, OwnsChildren = true });
        Fixtures.Run(graft, ps, 0, 3);
        string file = Path.Combine(_dir.FullName, "checkpoint.bin");
        graft.save_state_dict(file);
        var previous = File.ReadAllBytes(file);
        var m = (GenericSecondMomentOptimizer)graft.Magnitude;
        graft.Dispose();

        graft.Invoking(g => g.save_state_dict(file)).Should().Throw<ObjectDisposedException>();
        m.Invoking(o => o.save_state_dict(file)).Should().Throw<ObjectDisposedException>();

        File.ReadAllBytes(file).Should().Equal(previous);
        Directory.GetFiles(_dir.FullName).Should().Equal(new[] { file });
    }

    // ---------------------------------------------------------------- a child section cut short

    public static TheoryData<string, string, GraftPath, bool> TruncatedChildCases()
    {
        var data = new TheoryData<string, string, GraftPath, bool>();
        foreach (bool cutD in new[] { false, true }) {
            data.Add("paper-heavyball", "paper-adam", GraftPath.ClosedForm, cutD);
            data.Add("paper-heavyball", "paper-adam", GraftPath.BlackBox, cutD);
            data.Add("torch-heavyball", "torch-adam", GraftPath.BlackBox, cutD);
        }
        return data;
    }

    /// <summary>
    /// The graft file stays well-formed (each child section's length says how long it is), but one child's section
    /// lacks its last bytes, as if that child's state had been written short. When D's section is the short one,
    /// M's section is complete and valid: loading must still not apply it.
    /// </summary>
    [Theory]
    [MemberData(nameof(TruncatedChildCases))]
    public void AGraftFileWithAChildSectionCutShortIsRejectedAndChangesNothing(string m, string d, GraftPath path, bool cutD)
    {
        var options = new GraftOptions { Path = path, OwnsChildren = true };
        var saved = ChildCatalog.SavedGraft(m, d, options, 5);
        var ps = Fixtures.MakeParameters(Fixtures.Shapes, seed: 3);
        using var graft = ChildCatalog.Graft(m, d, ps, options);
        Fixtures.Run(graft, ps, 0, 2);
        var stateBefore = HardeningSupport.SaveToBytes(graft);
        var paramsBefore = HardeningSupport.RawBytes(ps);
        stateBefore.Should().NotEqual(saved, "the target must hold another state, or 'unchanged' proves nothing");

        var (_, mSection, dSection) = StateFileLayout.OfGraft(saved);
        var section = cutD ? dSection : mSection;
        foreach (int cut in new[] { 1, 9, section.Length / 2 }) {
            var shortened = CutSection(saved, section.Start, section.Length, cut);
            string file = Path.Combine(_dir.FullName, "graft.bin");
            File.WriteAllBytes(file, shortened);

            graft.Invoking(g => g.load_state_dict(file)).Should().Throw<InvalidDataException>($"{(cutD ? "D" : "M")}'s section is {cut} bytes short");

            HardeningSupport.SaveToBytes(graft).Should().Equal(stateBefore, $"a rejected load must change neither child ({(cutD ? "D" : "M")}'s section {cut} bytes short)");
            HardeningSupport.ShouldEqualBytes(HardeningSupport.RawBytes(ps), paramsBefore, "a rejected load must not move parameters");
        }
    }

    /// <summary>The bytes with <paramref name="cut"/> bytes removed from the end of a child section whose length field (8 bytes before it) is adjusted.</summary>
    private static byte[] CutSection(byte[] bytes, int start, int length, int cut)
    {
        var result = new List<byte>(bytes.Length - cut);
        result.AddRange(bytes.AsSpan(0, start - 8).ToArray());
        result.AddRange(BitConverter.GetBytes((long)(length - cut)));
        result.AddRange(bytes.AsSpan(start, length - cut).ToArray());
        result.AddRange(bytes.AsSpan(start + length).ToArray());
        return result.ToArray();
    }

    // ---------------------------------------------------------------- save → load → continue, grafts of catalog configurations

    private static readonly string[] ResumeConfigs = { "heavy-ball", "adagrad", "torch-sgd-nesterov", "torch-adam-amsgrad", "torch-adamw" };

    public static TheoryData<string, string, GraftPath, GraftGranularity> ResumeCases()
    {
        var data = new TheoryData<string, string, GraftPath, GraftGranularity>();
        var granularities = new[] { GraftGranularity.PerTensor, GraftGranularity.Global, GraftGranularity.PerBlock };
        for (int i = 0; i < ResumeConfigs.Length; i++) {
            for (int j = 0; j < ResumeConfigs.Length; j++) {
                if (i == j) continue;
                foreach (var path in new[] { GraftPath.ClosedForm, GraftPath.BlackBox })
                    data.Add(ResumeConfigs[i], ResumeConfigs[j], path, granularities[(i + j) % 3]);
            }
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(ResumeCases))]
    public void AGraftOfCatalogConfigurationsResumesBitIdenticallyFromAFile(string m, string d, GraftPath path, GraftGranularity granularity)
    {
        const int before = 5, after = 5;
        var options = new GraftOptions { Path = path, Granularity = granularity, BlockSize = 4, OwnsChildren = true };
        GraftOptimizer Make(IList<Parameter> w, double lrFactor = 1)
        {
            var mOpt = OptimizerTable.CreateGeneric(m, w);
            foreach (var g in mOpt.ParamGroups) g.LearningRate *= lrFactor;
            return new GraftOptimizer(mOpt, OptimizerTable.CreateGeneric(d, w), options);
        }

        var reference = Fixtures.MakeParameters(Fixtures.Shapes);
        using (var graft = Make(reference)) Fixtures.Run(graft, reference, 0, before + after);

        var w = Fixtures.MakeParameters(Fixtures.Shapes);
        string file = Path.Combine(_dir.FullName, "graft.bin");
        using (var graft = Make(w)) {
            graft.IsClosedForm.Should().Be(path == GraftPath.ClosedForm);
            Fixtures.Run(graft, w, 0, before);
            graft.save_state_dict(file);
        }

        // A fresh graft whose M has another learning rate: the load must restore options as well as state.
        var resumed = Fixtures.Clone(w);
        using (var graft = Make(resumed, lrFactor: 3)) {
            graft.load_state_dict(file);
            Fixtures.Run(graft, resumed, before, after);
        }
        HardeningSupport.ShouldEqualBytes(HardeningSupport.RawBytes(resumed), HardeningSupport.RawBytes(reference), $"{m}#{d} ({path}, {granularity}) resumed from a file vs. uninterrupted");

        // Without the loaded state the continuation differs, so the state is what made it identical.
        var fresh = Fixtures.Clone(w);
        using (var graft = Make(fresh)) Fixtures.Run(graft, fresh, before, after);
        Fixtures.MaxRelativeDifference(fresh, reference).Should().BeGreaterThan(1e-9);
    }
}
