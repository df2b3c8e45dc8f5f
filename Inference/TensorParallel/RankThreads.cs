using System.Runtime.ExceptionServices;

namespace AspireAi.Inference.TensorParallel;

/// <summary>
/// One long-lived thread per rank beyond the first; rank 0 runs on the calling thread (the engine's), which saves a
/// hand-off per step. <see cref="Run"/> starts the same work on every rank and returns when all have finished. A rank
/// that fails calls the group's abort first, so that ranks waiting for it in a collective fail too instead of hanging.
/// </summary>
internal sealed class RankThreads : IDisposable
{
    private readonly Thread[] _threads;
    private readonly SemaphoreSlim[] _start;
    private readonly Exception?[] _errors;
    private readonly CountdownEvent _done;
    private readonly Action _abort;
    private Action<int>? _work;
    private volatile bool _stopping;
    private int _running;

    /// <param name="abort">Releases ranks blocked in a collective (<see cref="ICollectiveGroup.Abort"/>).</param>
    public RankThreads(int size, Action abort)
    {
        _abort = abort;
        _errors = new Exception?[size];
        _done = new CountdownEvent(size - 1);
        _start = Enumerable.Range(1, size - 1).Select(_ => new SemaphoreSlim(0)).ToArray();
        _threads = Enumerable.Range(1, size - 1).Select(rank => new Thread(() => Loop(rank)) { IsBackground = true, Name = $"tp-rank-{rank}" }).ToArray();
        foreach (var thread in _threads)
        {
            thread.Start();
        }
    }

    public int Size => _errors.Length;

    /// <summary>Runs <paramref name="work"/>(rank) on every rank; throws the lowest rank's failure once all have returned.</summary>
    public void Run(Action<int> work)
    {
        ObjectDisposedException.ThrowIf(_stopping, this);
        if (Interlocked.Exchange(ref _running, 1) == 1)
        {
            throw new InvalidOperationException("The ranks are already running work: one caller at a time (the engine thread, or set-up before it starts).");
        }

        try
        {
            RunOnEveryRank(work);
        }
        finally
        {
            Volatile.Write(ref _running, 0);
        }
    }

    private void RunOnEveryRank(Action<int> work)
    {
        Array.Clear(_errors);
        _work = work;
        _done.Reset();
        foreach (var start in _start)
        {
            start.Release();
        }

        Execute(0);
        _done.Wait();
        _work = null;
        // The failure that aborted the group rather than a rank the abort released (those throw OperationCanceledException).
        var failure = _errors.FirstOrDefault(e => e is not null and not OperationCanceledException) ?? _errors.FirstOrDefault(e => e is not null);
        if (failure is not null)
        {
            ExceptionDispatchInfo.Throw(failure);
        }
    }

    private void Execute(int rank)
    {
        try
        {
            _work!(rank);
        }
        catch (Exception e)
        {
            _errors[rank] = e;
            _abort();
        }
    }

    private void Loop(int rank)
    {
        var start = _start[rank - 1];
        while (true)
        {
            start.Wait();
            if (_stopping)
            {
                return;
            }

            Execute(rank);
            _done.Signal();
        }
    }

    public void Dispose()
    {
        if (_stopping)
        {
            return;
        }

        _stopping = true;
        foreach (var start in _start)
        {
            start.Release();
        }

        foreach (var thread in _threads)
        {
            thread.Join();
        }

        foreach (var start in _start)
        {
            start.Dispose();
        }

        _done.Dispose();
    }
}
