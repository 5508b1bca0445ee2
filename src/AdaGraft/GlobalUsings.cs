// The namespaces nearly every library file uses, imported once for the project.
global using System;
global using System.Collections.Generic;
global using System.IO;
global using System.Linq;
global using AdaGraft.Rules;
global using TorchSharp;
global using TorchSharp.Modules;
global using static TorchSharp.torch;
