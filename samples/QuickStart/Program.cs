// QuickStart: train a small MLP on a synthetic regression task with TorchSharp's built-in Adam, AdaGraft's drop-in
// TorchAdam (same numbers), AdaGraft's paper-form AdaGrad, and a graft that takes its step norms from heavy-ball SGD
// and its directions from Adam (the paper's SGD#Adam); print the losses side by side, then time a step of each
// honestly: every optimizer warmed up first, then several timed rounds in alternating order, reporting the median.
using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Linq;
using AdaGraft.Grafting;
using AdaGraft.Optimizers;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

const int Steps = 300;
const int WarmupSteps = 100, TimedSteps = 200, Rounds = 7;
torch.manual_seed(0);
var x = torch.randn(256, 16);
using var teacher = nn.Sequential(nn.Linear(16, 32), nn.Tanh(), nn.Linear(32, 1));
Tensor y;
using (torch.no_grad()) y = teacher.forward(x) + 0.05 * torch.randn(256, 1);

Sequential Model()
{
    torch.manual_seed(42);
    return nn.Sequential(nn.Linear(16, 64), nn.Tanh(), nn.Linear(64, 1));
}

var runs = new List<(string name, Func<IEnumerable<Parameter>, optim.Optimizer> make)> {
    ("torch.optim.Adam (built-in)", ps => optim.Adam(ps, lr: 1e-2)),
    ("AdaGraft TorchAdam (drop-in)", ps => GenericSecondMomentOptimizer.TorchAdam(ps, lr: 1e-2)),
    ("AdaGraft paper AdaGrad (m=0.9, eps=0)", ps => GenericSecondMomentOptimizer.AdaGrad(ps, lr: 5e-2)),
    ("Graft SGD#Adam (norm SGD, dir Adam)", ps => new GraftOptimizer(
        GenericSecondMomentOptimizer.HeavyBall(ps, lr: 5e-2),
        GenericSecondMomentOptimizer.TorchAdam(ps, lr: 1),
        new GraftOptions { OwnsChildren = true })),
};

// One training step; the loss stays on the device unless the caller reads it.
Tensor Step(Sequential model, optim.Optimizer opt, bool backward)
{
    opt.zero_grad();
    var loss = nn.functional.mse_loss(model.forward(x), y);
    if (backward) {
        loss.backward();
        opt.step();
    }
    return loss;
}

// 1. The losses.
Console.WriteLine($"{"optimizer",-40} {"loss@0",10} {"loss@100",10} {"loss@" + Steps,10}");
foreach (var (name, make) in runs) {
    using var model = Model();
    using var opt = make(model.parameters());
    var losses = new double[Steps + 1];
    for (int t = 0; t <= Steps; t++) {
        using var scope = torch.NewDisposeScope();
        losses[t] = Step(model, opt, backward: t < Steps).item<float>();
    }
    Console.WriteLine($"{name,-40} {losses[0],10:F5} {losses[100],10:F5} {losses[Steps],10:F5}");
}

// 2. The time of a step (forward, backward, step). Timing each optimizer once, first run first, measures start-up
// (JIT compilation, first allocations) more than the optimizer; so every optimizer is warmed up, then timed in
// several rounds whose order alternates, and the median round is reported.
var models = runs.Select(_ => Model()).ToArray();
var opts = runs.Select((r, i) => r.make(models[i].parameters())).ToArray();
void Train(int i, int steps)
{
    for (int t = 0; t < steps; t++) {
        using var scope = torch.NewDisposeScope();
        Step(models[i], opts[i], backward: true);
    }
}
for (int i = 0; i < runs.Count; i++) Train(i, WarmupSteps);
var msPerStep = runs.Select(_ => new List<double>()).ToArray();
for (int round = 0; round < Rounds; round++) {
    var order = Enumerable.Range(0, runs.Count).ToArray();
    if (round % 2 == 1) Array.Reverse(order);
    foreach (int i in order) {
        var sw = Stopwatch.StartNew();
        Train(i, TimedSteps);
        msPerStep[i].Add(sw.Elapsed.TotalMilliseconds / TimedSteps);
    }
}
Console.WriteLine();
Console.WriteLine($"ms per step: median of {Rounds} rounds of {TimedSteps} steps in alternating order, after {WarmupSteps} warm-up steps each");
Console.WriteLine($"{"optimizer",-40} {"median",8} {"min",8} {"max",8}");
for (int i = 0; i < runs.Count; i++) {
    var sorted = msPerStep[i].OrderBy(v => v).ToArray();
    Console.WriteLine($"{runs[i].name,-40} {sorted[sorted.Length / 2],8:F3} {sorted[0],8:F3} {sorted[^1],8:F3}");
}
foreach (var o in opts) o.Dispose();
foreach (var m in models) m.Dispose();
