using System;
using AdaGraft.Grafting;
using AdaGraft.Optimizers;
using TorchSharp;
using static TorchSharp.torch;

// One training step through the packaged library: a graft of heavy-ball SGD's norm onto Adam's direction.
torch.manual_seed(0);
using var model = nn.Linear(4, 1);
using var opt = new GraftOptimizer(
    GenericSecondMomentOptimizer.HeavyBall(model.parameters(), lr: 0.1),
    GenericSecondMomentOptimizer.TorchAdam(model.parameters(), lr: 1),
    new GraftOptions { OwnsChildren = true });
var x = torch.randn(8, 4);
var y = torch.randn(8, 1);
var before = model.weight!.detach().clone();
opt.zero_grad();
var loss = nn.functional.mse_loss(model.forward(x), y);
loss.backward();
opt.step();
double moved = (model.weight!.detach() - before).norm().item<float>();
Console.WriteLine($"package smoke test: loss {loss.item<float>():F4}, weight moved by {moved:E3}");
if (!(moved > 0) || !double.IsFinite(moved)) {
    Console.Error.WriteLine("package smoke test FAILED: the step did not move the weights");
    return 1;
}
Console.WriteLine("package smoke test passed");
return 0;
