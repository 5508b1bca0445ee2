// The namespaces nearly every benchmark file uses, imported once for the project.
global using System;
global using System.Collections.Generic;
global using System.Diagnostics;
global using System.Linq;
global using AdaGraft.Grafting;
global using AdaGraft.Optimizers;
global using TorchSharp;
global using TorchSharp.Modules;
global using static TorchSharp.torch;
