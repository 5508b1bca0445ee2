namespace AdaGraft.Tests.Hardening;

/// <summary>
/// A state file whose structure is corrupted (a flipped byte in a type name, a count, a dtype code, a rank, a
/// dimension, a slot name, a presence flag, a section length) or that is empty is rejected with
/// <see cref="InvalidDataException"/> and changes neither the optimizer nor the parameters.
/// </summary>
public sealed class CorruptStateFileTests : IDisposable
{
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("adagraft-corrupt-");

    public void Dispose() => _dir.Delete(recursive: true);

    // torch-adam-amsgrad has all three slots (m1, m2, max_m2) present; heavy-ball only m1, two absent.
    [Theory]
    [InlineData("torch-adam-amsgrad")]
    [InlineData("heavy-ball")]
    public void EveryCorruptedHeaderFieldOfAnOptimizerFileIsRejectedAndChangesNothing(string name)
    {
        using var sourceOpt = Fixtures.Trained(p => OptimizerTable.CreateGeneric(name, p), 5, out var source);
        var saved = HardeningSupport.SaveToBytes(sourceOpt);

        var ps = Fixtures.MakeParameters(Fixtures.Shapes, seed: 3);
        using var opt = OptimizerTable.CreateGeneric(name, ps);
        Fixtures.Run(opt, ps, 0, 2);

        var fields = StateFileLayout.OfOptimizer(saved);
        fields.Should().HaveCountGreaterThan(30);
        var failures = fields
            .Select(f => Check(f.Name, f.ApplyTo(saved), file => opt.load_state_dict(file), () => HardeningSupport.SaveToBytes(opt), ps))
            .Where(failure => failure is not null)
            .ToList();
        failures.Should().BeEmpty($"every corrupted field of {name}'s file must be rejected with InvalidDataException and change nothing");

        // The uncorrupted file does load (so the rejections are about the corruption).
        string good = Write(saved);
        opt.load_state_dict(good);
        HardeningSupport.SaveToBytes(opt).Should().Equal(saved);
    }

    public static TheoryData<string, string, GraftPath> GraftCases() => new() {
        { "paper-heavyball", "paper-adam", GraftPath.ClosedForm },
        { "paper-adagrad", "paper-adam", GraftPath.BlackBox },
        { "torch-heavyball", "torch-adam", GraftPath.BlackBox },
    };

    [Theory]
    [MemberData(nameof(GraftCases))]
    public void EveryCorruptedHeaderFieldOfAGraftFileIsRejectedAndChangesNothing(string m, string d, GraftPath path)
    {
        // Per block, so that the block size is a checked field too.
        var options = new GraftOptions { Path = path, Granularity = GraftGranularity.PerBlock, BlockSize = 4, OwnsChildren = true };
        var saved = ChildCatalog.SavedGraft(m, d, options, 5);
        var ps = Fixtures.MakeParameters(Fixtures.Shapes, seed: 3);
        using var graft = ChildCatalog.Graft(m, d, ps, options);
        Fixtures.Run(graft, ps, 0, 2);

        var (graftFields, mSection, dSection) = StateFileLayout.OfGraft(saved);
        var corrupted = graftFields.Select(f => (f.Name, Bytes: f.ApplyTo(saved))).ToList();
        // Inside each child's section, the fields of AdaGraft's own format (TorchSharp's built-ins have theirs).
        if (ChildCatalog.IsRuleBased(m)) {
            corrupted.AddRange(StateFileLayout.OfOptimizer(saved, mSection.Start, mSection.Length, "M: ")
                .Select(f => (f.Name, Bytes: f.ApplyTo(saved, mSection.Start))));
        }
        if (ChildCatalog.IsRuleBased(d)) {
            corrupted.AddRange(StateFileLayout.OfOptimizer(saved, dSection.Start, dSection.Length, "D: ")
                .Select(f => (f.Name, Bytes: f.ApplyTo(saved, dSection.Start))));
        }

        var failures = corrupted
            .Select(c => Check(c.Name, c.Bytes, file => graft.load_state_dict(file), () => HardeningSupport.SaveToBytes(graft), ps))
            .Where(failure => failure is not null)
            .ToList();
        failures.Should().BeEmpty($"every corrupted field of the {m}#{d} graft file must be rejected with InvalidDataException and change nothing");

        graft.load_state_dict(Write(saved));
        HardeningSupport.SaveToBytes(graft).Should().Equal(saved);
    }

    [Fact]
    public void AnEmptyOptimizerFileIsRejectedAndChangesNothing()
    {
        using var opt = Fixtures.Trained(p => OptimizerTable.CreateGeneric("torch-adam", p), 2, out var ps);

        var failure = Check("empty file", Array.Empty<byte>(), file => opt.load_state_dict(file), () => HardeningSupport.SaveToBytes(opt), ps);

        failure.Should().BeNull();
    }

    [Theory]
    [InlineData("paper-heavyball", "paper-adam", GraftPath.ClosedForm)]
    [InlineData("torch-heavyball", "torch-adam", GraftPath.BlackBox)]
    public void AnEmptyGraftFileIsRejectedAndChangesNothing(string m, string d, GraftPath path)
    {
        using var graft = Fixtures.Trained(p => ChildCatalog.Graft(m, d, p, new GraftOptions { Path = path, OwnsChildren = true }), 2, out var ps);

        var failure = Check("empty file", Array.Empty<byte>(), file => graft.load_state_dict(file), () => HardeningSupport.SaveToBytes(graft), ps);

        failure.Should().BeNull();
    }

    /// <summary>
    /// Writes <paramref name="bytes"/> to a file, loads it, and returns null when the load threw
    /// <see cref="InvalidDataException"/> and changed neither state nor parameters, else what went wrong.
    /// </summary>
    private string? Check(string field, byte[] bytes, Action<string> load, Func<byte[]> state, List<Parameter> ps)
    {
        string file = Write(bytes);
        var stateBefore = state();
        var paramsBefore = HardeningSupport.RawBytes(ps);
        try {
            load(file);
            return $"{field}: loaded without an exception";
        } catch (InvalidDataException) {
            // Expected; now check that nothing changed.
        } catch (Exception e) {
            return $"{field}: {e.GetType().Name} instead of InvalidDataException ({e.Message})";
        }
        if (!state().SequenceEqual(stateBefore)) return $"{field}: rejected, but the optimizer's state changed";
        var paramsAfter = HardeningSupport.RawBytes(ps);
        if (paramsAfter.Where((p, i) => !p.SequenceEqual(paramsBefore[i])).Any()) return $"{field}: rejected, but a parameter changed";
        return null;
    }

    private string Write(byte[] bytes)
    {
        string file = Path.Combine(_dir.FullName, "state.bin");
        File.WriteAllBytes(file, bytes);
        return file;
    }
}
