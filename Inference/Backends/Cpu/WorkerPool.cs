using System.Diagnostics;

namespace AspireAi.Inference.Backends.Cpu;

/// <summary>Work split across the pool: each worker runs <see cref="Execute"/> with its index.</summary>
internal interface IParallelWork
{
    void Execute(int worker, int workerCount);
}

/// <summary>
/// A fixed set of threads that spin on a generation counter between operations, so dispatching an operation costs a cache
/// line round trip rather than a <c>Task</c> (at ~1 ms per token and ~60 operations per token, a 20 µs wake-up per operation
/// would cost more than the arithmetic). The calling thread is worker 0. Workers that stay idle for
/// <see cref="SpinBeforeSleep"/> block on a monitor so an idle engine burns no CPU.
/// </summary>
internal sealed class WorkerPool : IDisposable
{
    // Between the operations of a step the gap is a few microseconds; between steps (sampling, detokenising, the HTTP layer)
    // it is tens of microseconds. 2 ms keeps workers hot across steps and still lets an idle server go quiet.
    private static readonly long SpinBeforeSleep = Stopwatch.Frequency / 500;

    private readonly Thread[] _threads;
    private readonly object _gate = new();
    private IParallelWork? _work;
    private int _generation;
    private int _pending;
    private int _sleepers;
    private volatile bool _disposed;
    private Exception? _failure;

    public WorkerPool(int threadCount)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(threadCount);
        ThreadCount = threadCount;
        _threads = new Thread[threadCount - 1];
        for (var i = 0; i < _threads.Length; i++)
        {
            var index = i + 1;
            _threads[i] = new Thread(() => WorkerLoop(index)) { IsBackground = true, Name = $"cpu-backend-{index}" };
            _threads[i].Start();
        }
    }

    public int ThreadCount { get; }

    /// <summary>Runs <paramref name="work"/> on every worker and returns when all have finished.</summary>
    public void Run(IParallelWork work)
    {
        if (ThreadCount == 1)
        {
            work.Execute(0, 1);
            return;
        }

        _work = work;
        Volatile.Write(ref _pending, ThreadCount - 1);
        Interlocked.Increment(ref _generation);
        if (Volatile.Read(ref _sleepers) > 0)
        {
            lock (_gate)
            {
                Monitor.PulseAll(_gate);
            }
        }

        Exception? own = null;
        try
        {
            work.Execute(0, ThreadCount);
        }
        catch (Exception e)
        {
            own = e;
        }

        var spinner = new SpinWait();
        while (Volatile.Read(ref _pending) != 0)
        {
            spinner.SpinOnce(sleep1Threshold: -1);
        }

        _work = null;
        var failure = own ?? Interlocked.Exchange(ref _failure, null);
        if (failure is not null)
        {
            throw new InvalidOperationException("A CPU backend operation failed.", failure);
        }
    }

    private void WorkerLoop(int index)
    {
        var seen = 0;
        while (true)
        {
            var start = Stopwatch.GetTimestamp();
            var spinner = new SpinWait();
            while (Volatile.Read(ref _generation) == seen && !_disposed)
            {
                // SpinOnce pauses for the first iterations, then yields the core: when the machine is oversubscribed a
                // pure busy-wait starves the very thread it waits for (measured: 5× slower generation at load 8 on 2 cores).
                spinner.SpinOnce(sleep1Threshold: -1);
                if (spinner.NextSpinWillYield && Stopwatch.GetTimestamp() - start > SpinBeforeSleep)
                {
                    Sleep(seen);
                    start = Stopwatch.GetTimestamp();
                    spinner.Reset();
                }
            }

            if (_disposed)
            {
                return;
            }

            seen = Volatile.Read(ref _generation);
            try
            {
                _work!.Execute(index, ThreadCount);
            }
            catch (Exception e)
            {
                Interlocked.CompareExchange(ref _failure, e, null);
            }

            Interlocked.Decrement(ref _pending);
        }
    }

    private void Sleep(int seen)
    {
        lock (_gate)
        {
            Interlocked.Increment(ref _sleepers);
            while (Volatile.Read(ref _generation) == seen && !_disposed)
            {
                Monitor.Wait(_gate);
            }

            Interlocked.Decrement(ref _sleepers);
        }
    }

    public void Dispose()
    {
        _disposed = true;
        lock (_gate)
        {
            Monitor.PulseAll(_gate);
        }

        foreach (var thread in _threads)
        {
            thread.Join();
        }
    }

    /// <summary>The half-open range of <paramref name="count"/> items worker <paramref name="worker"/> owns, in chunks of <paramref name="align"/>.</summary>
    public static (int Start, int End) Split(int count, int worker, int workerCount, int align = 1)
    {
        var chunks = (count + align - 1) / align;
        var start = (int)((long)chunks * worker / workerCount) * align;
        var end = (int)((long)chunks * (worker + 1) / workerCount) * align;
        return (Math.Min(start, count), Math.Min(end, count));
    }
}
