// QuickStart: train a small MLP on a synthetic regression task three ways — TorchSharp's built-in Adam, AdaGraft's
// drop-in TorchAdam (same numbers), and a graft that takes its step norms from heavy-ball SGD and its directions
// from Adam (the paper's SGD#Adam) — and print the losses side by side.
using System;
using System.Collections.Generic;
using System.Diagnostics;
using AdaGraft.Grafting;
using AdaGraft.Optimizers;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

const int Steps = 300;
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

Console.WriteLine($"{"optimizer",-40} {"loss@0",10} {"loss@100",10} {"loss@" + Steps,10} {"ms/step",8}");
foreach (var (name, make) in runs) {
    using var model = Model();
    using var opt = make(model.parameters());
    var losses = new double[Steps + 1];
    var sw = Stopwatch.StartNew();
    for (int t = 0; t <= Steps; t++) {
        using var scope = torch.NewDisposeScope();
        opt.zero_grad();
        var loss = nn.functional.mse_loss(model.forward(x), y);
        losses[t] = loss.item<float>();
        if (t == Steps) break;
        loss.backward();
        opt.step();
    }
    Console.WriteLine($"{name,-40} {losses[0],10:F5} {losses[100],10:F5} {losses[Steps],10:F5} {sw.Elapsed.TotalMilliseconds / Steps,8:F2}");
}
