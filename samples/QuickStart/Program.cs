using static TorchSharp.torch;

var x = randn(3, 3);
System.Console.WriteLine(x.sum().item<float>());
