namespace AspireAi.Inference.Backends.Cuda.Driver;

/// <summary>
/// Per-kernel GPU time of the launches on a stream (set <see cref="CudaStream.Timer"/>): an event recorded before and after
/// each launch, read once the work is done. The events serialise nothing the stream did not already order, but recording
/// two per launch adds host time, so profile separately from the timings.
/// </summary>
public sealed class KernelTimer(CudaContext context) : IDisposable
{
    private readonly List<CudaEvent> _events = [];
    private readonly List<string> _names = [];
    private int _used;

    internal void Begin(CudaStream stream, string kernel)
    {
        _names.Add(kernel);
        Next().Record(stream);
    }

    internal void End(CudaStream stream) => Next().Record(stream);

    private CudaEvent Next()
    {
        if (_used == _events.Count)
        {
            _events.Add(new CudaEvent(context));
        }

        return _events[_used++];
    }

    /// <summary>Waits for the recorded launches, returns milliseconds and launches per kernel name, and starts afresh.</summary>
    public IReadOnlyList<(string Kernel, int Launches, double Milliseconds)> Collect()
    {
        if (_used > 0)
        {
            _events[_used - 1].Synchronize();
        }

        var totals = new Dictionary<string, (int Launches, double Milliseconds)>();
        for (var i = 0; i < _names.Count; i++)
        {
            var ms = _events[2 * i + 1].ElapsedSince(_events[2 * i]);
            var (launches, sum) = totals.GetValueOrDefault(_names[i]);
            totals[_names[i]] = (launches + 1, sum + ms);
        }

        _names.Clear();
        _used = 0;
        return totals.Select(t => (t.Key, t.Value.Launches, t.Value.Milliseconds)).OrderByDescending(t => t.Milliseconds).ToList();
    }

    public void Dispose()
    {
        foreach (var e in _events)
        {
            e.Dispose();
        }
    }
}
