namespace AdaGraft.Optimizers;

public abstract partial class RuleOptimizer<TOptions, TState>
{
    /// <summary>
    /// The tensors of one step, each gradient read once. Where <see cref="NativeTensor.Available"/>, a gradient is read
    /// as a bare native handle: a tensor the fused kernel takes never gets a managed <see cref="Tensor"/> (an object
    /// with a finalizer, registered on the dispose scope, for each tensor of each step). The indexer gives the
    /// <see cref="TensorStep"/> of the eager path and of <see cref="TryFusedSteps"/> overrides, wrapping the handle on
    /// first use (the wrapper then owns it and the step's dispose scope frees it); <see cref="Release"/> frees the
    /// handles never wrapped. One instance per optimizer, reused.
    /// </summary>
    private sealed class StepList : IReadOnlyList<TensorStep>
    {
        private readonly List<(TOptions Options, TState State, Parameter Parameter)> _items = new();
        private readonly List<IntPtr> _raw = new();
        private readonly List<Tensor?> _managed = new();

        /// <summary>Adds a tensor of the step; the list owns its gradient from here on.</summary>
        public void Add(TOptions options, TState state, Parameter p, TensorRef grad)
        {
            _items.Add((options, state, p));
            _raw.Add(grad.Managed is null ? grad.Handle : IntPtr.Zero);
            _managed.Add(grad.Managed);
        }

        public int Count => _items.Count;

        public TOptions Options(int i) => _items[i].Options;

        public TState State(int i) => _items[i].State;

        public Parameter Parameter(int i) => _items[i].Parameter;

        /// <summary>Tensor <paramref name="i"/>'s gradient as the metadata reads and kernels take it (no wrapper made).</summary>
        public TensorRef Grad(int i) => _managed[i] is Tensor g ? g : new TensorRef(_raw[i], null);

        public TensorStep this[int i] {
            get {
                if (_managed[i] is null) {
                    // Registered on the step's dispose scope, which frees the handle with it.
                    _managed[i] = Tensor.UnsafeCreateTensor(_raw[i]);
                    _raw[i] = IntPtr.Zero;
                }
                var (options, state, p) = _items[i];
                return new TensorStep(options, state, p, _managed[i]!);
            }
        }

        public IEnumerator<TensorStep> GetEnumerator()
        {
            for (int i = 0; i < Count; i++) yield return this[i];
        }

        System.Collections.IEnumerator System.Collections.IEnumerable.GetEnumerator() => GetEnumerator();

        /// <summary>Frees the gradients never wrapped and empties the list (wrapped ones go with the dispose scope).</summary>
        public void Release()
        {
            for (int i = 0; i < _raw.Count; i++) if (_raw[i] != IntPtr.Zero) NativeTensor.Free(_raw[i]);
            _items.Clear();
            _raw.Clear();
            _managed.Clear();
        }
    }

    private readonly StepList _stepList = new();
}
