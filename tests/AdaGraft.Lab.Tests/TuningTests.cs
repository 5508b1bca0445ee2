using System;
using System.IO;
using System.Linq;
using AdaGraft.Grafting;
using AdaGraft.Lab.Data;
using AdaGraft.Lab.Experiments;
using AdaGraft.Lab.Tasks;
using AdaGraft.Lab.Training;
using AdaGraft.Optimizers;
using FluentAssertions;
using TorchSharp;
using Xunit;

namespace AdaGraft.Lab.Tests;

public class TuningTests
{
    [Fact]
    public void TunesOncePerOptimizerAndReusesTheCache()
    {
        var (train, test) = FashionMnist.Load(FashionMnist.ShippedDirectory);
        using var task = new VisionTask(train, test, new VisionSettings(Hidden: 8, BatchSize: 16, MaxTrain: 128, MaxTest: 64), torch.CPU, "test");
        var dir = Path.Combine(Path.GetTempPath(), "adagraft-tune-" + Guid.NewGuid().ToString("N"));
        var cache = Path.Combine(dir, "lr-tuning.json");
        try {
            int steps = 0, grown = 0;
            var first = LearningRates.Tune(task, new Schedule(ScheduleKind.WarmupStaircase, 40), tuneSteps: 10, seed: 0, readEvery: 5, cache, retune: false,
                () => steps++, null, g => grown += g);
            first.Keys.Should().BeEquivalentTo(BaseOptimizers.All);
            foreach (var (o, c) in first) {
                var grid = LearningRates.Grid("vision", o);
                c.Grid.Count.Should().BeInRange(grid.Length, grid.Length + LearningRates.MaxExtensions);
                c.Grid.Select(p => p.Lr).Should().Contain(grid).And.Contain(c.Lr);
                c.Grid.Where(p => !p.Diverged).Min(p => p.TrainLoss).Should().Be(c.Grid.Single(p => p.Lr == c.Lr).TrainLoss);
            }
            steps.Should().Be(first.Values.Sum(c => c.Grid.Count) * 10);
            grown.Should().Be((first.Values.Sum(c => c.Grid.Count) - 12) * 10);
            File.Exists(cache).Should().BeTrue();

            var second = LearningRates.Tune(task, new Schedule(ScheduleKind.WarmupStaircase, 40), tuneSteps: 10, seed: 0, readEvery: 5, cache, retune: false, null, null);
            second.Values.Should().OnlyContain(c => c.How == "cached");
            second.ToDictionary(p => p.Key, p => p.Value.Lr).Should().BeEquivalentTo(first.ToDictionary(p => p.Key, p => p.Value.Lr));
        } finally {
            if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void DiagonalCellsAreTheBaseOptimizerAndOthersLayerWiseGrafts()
    {
        using var lin = torch.nn.Linear(3, 2);
        var ps = lin.parameters().ToList();
        using var diag = BaseOptimizers.Cell(BaseOptimizer.Adam, BaseOptimizer.Adam, ps, 0.01);
        diag.Should().BeOfType<GenericSecondMomentOptimizer>();
        using var graft = BaseOptimizers.Cell(BaseOptimizer.Sgd, BaseOptimizer.AdaGrad, ps, 0.1);
        var g = graft.Should().BeOfType<GraftOptimizer>().Subject;
        g.Options.Granularity.Should().Be(GraftGranularity.PerTensor);
        g.Options.OwnsChildren.Should().BeTrue();
        g.Magnitude.ParamGroups.Single().LearningRate.Should().Be(0.1);
        g.Direction.ParamGroups.Single().LearningRate.Should().Be(1);
    }
}
