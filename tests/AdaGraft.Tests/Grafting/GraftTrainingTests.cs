namespace AdaGraft.Tests.Grafting;

/// <summary>
/// Every pair of the 3×3 table M, D ∈ {SGD (heavy ball), Adam, AdaGrad} (paper forms) trains a small MLP on a
/// synthetic regression task: 200 full-batch steps halve the loss at least.
/// </summary>
public class GraftTrainingTests
{
    private const int Steps = 200;
    private static readonly string[] Names = { "sgd", "adam", "adagrad" };

    /// <summary>The learning rate of each base optimizer when it is M (D's learning rate is 1: it cancels out).</summary>
    private static double MagnitudeLr(string name) => name switch {
        "sgd" => 0.02,
        "adam" => 0.01,
        "adagrad" => 0.02,
        _ => throw new ArgumentOutOfRangeException(nameof(name), name, "unknown optimizer"),
    };

    private static GenericSecondMomentOptimizer Make(string name, IEnumerable<Parameter> ps, double lr) => name switch {
        "sgd" => GenericSecondMomentOptimizer.HeavyBall(ps, lr, momentum: 0.9),
        "adam" => GenericSecondMomentOptimizer.Adam(ps, lr),
        "adagrad" => GenericSecondMomentOptimizer.AdaGrad(ps, lr),
        _ => throw new ArgumentOutOfRangeException(nameof(name), name, "unknown optimizer"),
    };

    public static TheoryData<string, string> Pairs()
    {
        var data = new TheoryData<string, string>();
        foreach (var m in Names)
            foreach (var d in Names)
                data.Add(m, d);
        return data;
    }

    [Theory]
    [MemberData(nameof(Pairs))]
    public void GraftTrainsASmallMlp(string m, string d)
    {
        using var scope = torch.NewDisposeScope();
        using var gen = new Generator(2024);
        var x = torch.randn(new long[] { 64, 8 }, ScalarType.Float32, generator: gen);
        var teacher = torch.randn(new long[] { 8, 1 }, ScalarType.Float32, generator: gen);
        var y = torch.tanh(x.mm(teacher));

        torch.manual_seed(17);
        using var model = nn.Sequential(nn.Linear(8, 16), nn.Tanh(), nn.Linear(16, 1));
        var ps = model.parameters();
        using var graft = new GraftOptimizer(Make(m, ps, MagnitudeLr(m)), Make(d, ps, 1), new GraftOptions { OwnsChildren = true });
        graft.IsClosedForm.Should().BeTrue();

        double initial = double.NaN, last;
        for (int step = 0; step < Steps; step++) {
            using var stepScope = torch.NewDisposeScope();
            graft.zero_grad();
            var loss = nn.functional.mse_loss(model.forward(x), y);
            loss.backward();
            if (step == 0) initial = loss.item<float>();
            graft.step();
        }
        using (torch.no_grad()) {
            using var final = nn.functional.mse_loss(model.forward(x), y);
            last = final.item<float>();
        }

        initial.Should().BeGreaterThan(0);
        double.IsFinite(last).Should().BeTrue($"{m}#{d} must not diverge");
        last.Should().BeLessThan(0.5 * initial, $"{m}#{d}: initial loss {initial}, final {last}");
    }
}
