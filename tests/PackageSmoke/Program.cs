using System;
using System.IO;
using System.Linq;
using AdaGraft.Diagnostics;
using AdaGraft.Grafting;
using AdaGraft.Optimizers;
using AdaGraft.Plotting;
using TorchSharp;
using static TorchSharp.torch;

// A few training steps through the packaged library (a graft of heavy-ball SGD's norm onto Adam's direction, with a
// step-norm recorder), then a figure through the packaged AdaGraft.Plotting: the PNG must exist and be a PNG.
torch.manual_seed(0);
using var model = nn.Linear(4, 1);
using var opt = new GraftOptimizer(
    GenericSecondMomentOptimizer.HeavyBall(model.parameters(), lr: 0.1),
    GenericSecondMomentOptimizer.TorchAdam(model.parameters(), lr: 1),
    new GraftOptions { Granularity = GraftGranularity.Global, OwnsChildren = true });
using var recorder = new StepNormRecorder(opt, model, new RecorderOptions { FlushEvery = 5 });
var x = torch.randn(8, 4);
var y = torch.randn(8, 1);
var before = model.weight!.detach().clone();
float firstLoss = 0, lastLoss = 0;
for (int step = 0; step < 10; step++) {
    opt.zero_grad();
    var loss = nn.functional.mse_loss(model.forward(x), y);
    loss.backward();
    opt.step();
    lastLoss = loss.item<float>();
    if (step == 0) firstLoss = lastLoss;
}
double moved = (model.weight!.detach() - before).norm().item<float>();
Console.WriteLine($"package smoke test: loss {firstLoss:F4} -> {lastLoss:F4}, weight moved by {moved:E3}");
if (!(moved > 0) || !double.IsFinite(moved)) {
    Console.Error.WriteLine("package smoke test FAILED: the steps did not move the weights");
    return 1;
}

var records = recorder.Records();
string png = Path.Combine(AppContext.BaseDirectory, "smoke-ratio.png");
File.Delete(png);
RatioPlots.GlobalRatio(records, png);
byte[] signature = { 0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A };
var head = File.Exists(png) ? File.ReadAllBytes(png).Take(8).ToArray() : Array.Empty<byte>();
if (!head.SequenceEqual(signature)) {
    Console.Error.WriteLine($"package smoke test FAILED: {png} is {(File.Exists(png) ? "not a PNG" : "missing")}");
    return 1;
}
Console.WriteLine($"package smoke test: {records.Count} step-norm records, figure {png} ({new FileInfo(png).Length:N0} bytes)");
Console.WriteLine("package smoke test passed");
return 0;
