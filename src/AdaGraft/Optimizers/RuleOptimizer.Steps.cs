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
        // Raw: the gradient's native handle while the list owns it unwrapped; Managed: its wrapper once there is one.
        private readonly List<(TOptions Options, TState State, Parameter Parameter, IntPtr Raw, Tensor? Managed)> _items = new();

        /// <summary>Adds a tensor of the step; the list owns its gradient from here on.</summary>
        public void Add(TOptions options, TState state, Parameter p, TensorRef grad) =>
            _items.Add((options, state, p, grad.Managed is null ? grad.Handle : IntPtr.Zero, grad.Managed));

        public int Count => _items.Count;

        public TOptions Options(int i) => _items[i].Options;

        public TState State(int i) => _items[i].State;

        public Parameter Parameter(int i) => _items[i].Parameter;

        /// <summary>Tensor <paramref name="i"/>'s gradient as the metadata reads and kernels take it (no wrapper made).</summary>
        public TensorRef Grad(int i) => _items[i].Managed is Tensor g ? g : new TensorRef(_items[i].Raw, null);

        public TensorStep this[int i] {
            get {
                var (options, state, p, raw, managed) = _items[i];
                if (managed is null) {
                    // Registered on the step's dispose scope, which frees the handle with it.
                    managed = Tensor.UnsafeCreateTensor(raw);
                    _items[i] = (options, state, p, IntPtr.Zero, managed);
                }
                return new TensorStep(options, state, p, managed);
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
            foreach (var item in _items) if (item.Raw != IntPtr.Zero) NativeTensor.Free(item.Raw);
            _items.Clear();
        }
    }

    private readonly StepList _stepList = new();
}
