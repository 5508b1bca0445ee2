using System;
using System.Linq;
using AdaGraft.Lab.Experiments;
using FluentAssertions;
using TorchSharp;
using Xunit;

namespace AdaGraft.Lab.Tests;

public class D1Tests
{
    [Fact]
    public void LeastSquaresDataMatchesTheDefinition()
    {
        var inst = LeastSquaresInstance.Create(n: 30, m: 50, p: 0.7, seed: 11);
        int d = inst.Dimension, n = inst.TrainCount;
        d.Should().Be(3 + 5 * (30 + 50));
        var all = inst.TrainX.Concat(inst.TestX).ToArray();
        var ys = inst.TrainY.Concat(inst.TestY).ToArray();
        for (int i = 0; i < ys.Length; i++) {
            var row = all.AsSpan(i * d, d).ToArray();
            double y = ys[i];
            (y == 1 || y == -1).Should().BeTrue();
            row[0].Should().Be(y, "x_i1 = y_i");
            row[1].Should().Be(1);
            row[2].Should().Be(1);
            int start = 4 + 5 * i - 1;               // 1-based 4 + 5(i − 1) for 1-based point i + 1
            int ones = y > 0 ? 1 : 5;
            for (int j = 3; j < d; j++) {
                double expected = j >= start && j < start + ones ? 1 : 0;
                row[j].Should().Be(expected, $"point {i + 1}, coordinate {j + 1}");
            }
        }
        inst.TrainY.Sum().Should().BePositive("more +1 than −1 labels in training");
        inst.TrainY.Should().Contain(-1).And.Contain(1);
    }

    [Fact]
    public void SignOfXtyMapsToFourTimesTheLabels()
    {
        // Wilson et al.'s condition for adaptive methods to end on a multiple of u = sign(Xᵀy): X·u = c·y (here c = 4).
        var inst = LeastSquaresInstance.Create(n: 25, m: 10, p: 0.7, seed: 2);
        var u = inst.SignXty();
        u.Take(3).Should().Equal(1, 1, 1);
        for (int i = 0; i < inst.TrainCount; i++) {
            double dot = 0;
            for (int j = 0; j < inst.Dimension; j++) dot += inst.TrainX[i * inst.Dimension + j] * u[j];
            dot.Should().Be(4 * inst.TrainY[i]);
        }
        u.Skip(3 + 5 * inst.TrainCount).Should().OnlyContain(v => v == 0, "test blocks are unseen");
    }

    [Fact]
    public void LeastSquaresGdGeneralisesAndAdaGradLabelsEverythingPositive()
    {
        var inst = LeastSquaresInstance.Create(n: 20, m: 200, p: 0.7, seed: 1);
        var rows = D1Constructions.RunLeastSquares(inst, steps: 600, torch.CPU, null);
        double negatives = inst.TestY.Count(v => v < 0) / (double)inst.TestCount;
        rows.Single(r => r.Optimizer.StartsWith("GD", StringComparison.Ordinal)).TestError.Should().Be(0);
        rows.Single(r => r.Optimizer.StartsWith("minimum-norm", StringComparison.Ordinal)).TestError.Should().Be(0);
        foreach (var name in new[] { "AdaGrad", "RMSprop", "Adam" })
            rows.Single(r => r.Optimizer == name).TestError.Should().BeApproximately(negatives, 1e-12, name + " predicts +1 everywhere");
    }

    [Fact]
    public void HingeSampleMatchesTheDefinition()
    {
        var inst = SparseHingeInstance.Create(d: 400, c: 0.5, seed: 3);
        inst.Sample.Should().HaveCount(200).And.OnlyContain(j => j >= 0 && j < 400);
        SparseHingeInstance.Create(400, 0.5, 3).Sample.Should().Equal(inst.Sample);
        inst.SeenFraction.Should().BeApproximately(inst.Sample.Distinct().Count() / 400.0, 1e-12);
    }

    [Fact]
    public void HingeAdaGradGeneralisesBetterThanSgd()
    {
        var inst = SparseHingeInstance.Create(d: 300, c: 0.5, seed: 1);
        var rows = D1Constructions.RunHinge(inst, torch.CPU, null);
        var ada = rows.Single(r => r.Optimizer == "AdaGrad");
        var sgd = rows.Single(r => r.Optimizer == "SGD");
        ada.TrainLoss.Should().Be(0, "AdaGrad sets each seen coordinate to 1 on its first visit");
        ada.TestError.Should().BeApproximately(1 - inst.SeenFraction, 1e-12);
        sgd.TestError.Should().BeGreaterThan(ada.TestError + 0.1);
    }
}
