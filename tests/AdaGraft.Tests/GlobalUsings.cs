// The namespaces nearly every test file uses, imported once for the project.
global using System;
global using System.Collections.Generic;
global using System.IO;
global using System.Linq;
global using AdaGraft.Grafting;
global using AdaGraft.Optimizers;
global using AdaGraft.Tests.Support;
global using FluentAssertions;
global using TorchSharp;
global using TorchSharp.Modules;
global using Xunit;
global using static TorchSharp.torch;
