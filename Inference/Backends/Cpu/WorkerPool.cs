using System.Diagnostics;

namespace AspireAi.Inference.Backends.Cpu;

/// <summary>Work the pool hands out in ranges of items: every item is executed exactly once, by whichever worker claims it.</summary>
internal interface IParallelWork
{
    /// <summary>How many independent items there are (rows, row chunks, (token, head) pairs).</summary>
    int Items { get; }

    /// <summary>Runs items [start, end). <paramref name="worker"/> indexes per-worker scratch space.</summary>
    void Execute(int start, int end, int worker);
}

/// <summary>
/// A fixed set of threads that spin on a shared word between operations, so dispatching an operation costs a few cache
/// line round trips rather than a <c>Task</c> (at ~0.5 ms per token and ~30 operations per token, a 20 µs wake-up per
/// operation would cost more than the arithmetic). The calling thread is worker 0. Workers that stay idle for
/// <see cref="SpinBeforeSleep"/> block on a monitor so an idle engine burns no CPU.
/// </summary>
/// <remarks>
/// Items are split statically, one contiguous share per worker, and each share is taken by whoever gets to it first: its
/// owner, or the caller once it has finished its own share and waited 50 µs more for the owner to show up. A worker that
/// the OS has not scheduled yet therefore never holds the caller up for a whole scheduler time slice (the previous design
/// waited for it, dozens of times per token on a machine shared by more busy threads than cores). Claiming item by item
/// from shared counters was tried and dropped: on an idle machine the extra cache-line traffic cost 5–10 % of a Q4_0
/// decode step.
/// </remarks>
internal sealed class WorkerPool : IDisposable
{
    // Between the operations of a step the gap is a few microseconds; between steps (sampling, detokenising, the HTTP layer)
    // it is tens of microseconds. 2 ms keeps workers hot across steps and still lets an idle server go quiet.
    private static readonly long SpinBeforeSleep = Stopwatch.Frequency / 500;

    // Scheduler time slices are milliseconds; a spinning or yielding worker reacts within microseconds.
    private static readonly long TakeOverAfter = Stopwatch.Frequency / 20_000;

    private readonly Thread[] _threads;
    private readonly object _gate = new();
    private readonly PaddedLong[] _taken;
    private PaddedLong _published;
    private PaddedLong _pending;
    private IParallelWork? _work;
    private int _items;
    private int _sleepers;
    private volatile bool _disposed;
    private Exception? _failure;

    public WorkerPool(int threadCount)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(threadCount);
        ThreadCount = threadCount;
        _taken = new PaddedLong[threadCount];
        _threads = new Thread[threadCount - 1];
        for (var i = 0; i < _threads.Length; i++)
        {
            var index = i + 1;
            _threads[i] = new Thread(() => WorkerLoop(index)) { IsBackground = true, Name = $"cpu-backend-{index}" };
            _threads[i].Start();
        }
    }

    public int ThreadCount { get; }

    /// <summary>Runs every item of <paramref name="work"/> across the workers and returns when all are done.</summary>
    public void Run(IParallelWork work)
    {
        var items = work.Items;
        if (items <= 0)
        {
            return;
        }

        if (ThreadCount == 1 || items == 1)
        {
            work.Execute(0, items, 0);
            return;
        }

        _work = work;
        _items = items;
        Volatile.Write(ref _pending.Value, ThreadCount - 1);
        var generation = _published.Value + 1;
        Volatile.Write(ref _published.Value, generation);
        if (Volatile.Read(ref _sleepers) > 0)
        {
            lock (_gate)
            {
                Monitor.PulseAll(_gate);
            }
        }

        RunShare(work, items, 0, 0);
        var finished = Stopwatch.GetTimestamp();
        for (var w = 1; w < ThreadCount; w++)
        {
            // A worker that is merely a few microseconds late (waking from a yield) should still do its share: taking it
            // at once made the small decode operations effectively single-threaded. One not there after TakeOverAfter is
            // descheduled, and waiting for it could cost a whole time slice.
            var wait = new SpinWait();
            while (Volatile.Read(ref _taken[w].Value) < generation && Stopwatch.GetTimestamp() - finished < TakeOverAfter)
            {
                wait.SpinOnce(sleep1Threshold: -1);
            }

            if (TryTake(w, generation))
            {
                RunShare(work, items, w, 0);
                Interlocked.Decrement(ref _pending.Value);
            }
        }

        var spinner = new SpinWait();
        while (Volatile.Read(ref _pending.Value) != 0)
        {
            spinner.SpinOnce(sleep1Threshold: -1);
        }

        _work = null;
        if (Interlocked.Exchange(ref _failure, null) is { } failure)
        {
            throw new InvalidOperationException("A CPU backend operation failed.", failure);
        }
    }

    /// <summary>Marks share <paramref name="share"/> of operation <paramref name="generation"/> as taken; false when someone
    /// else already took it. Generations only grow, so a worker that read an operation late cannot take a later one's share
    /// by mistake, and the operation cannot end before a taken share is done, so <see cref="_work"/> read after taking it is
    /// that operation's.</summary>
    private bool TryTake(int share, long generation)
    {
        var previous = Volatile.Read(ref _taken[share].Value);
        return previous < generation && Interlocked.CompareExchange(ref _taken[share].Value, generation, previous) == previous;
    }

    private void RunShare(IParallelWork work, int items, int share, int worker)
    {
        var start = (int)((long)items * share / ThreadCount);
        var end = (int)((long)items * (share + 1) / ThreadCount);
        if (start >= end)
        {
            return;
        }

        try
        {
            work.Execute(start, end, worker);
        }
        catch (Exception e)
        {
            // Recorded and rethrown by Run once every share is done.
            Interlocked.CompareExchange(ref _failure, e, null);
        }
    }

    private void WorkerLoop(int index)
    {
        var seen = 0L;
        while (true)
        {
            var start = Stopwatch.GetTimestamp();
            var spinner = new SpinWait();
            while (Volatile.Read(ref _published.Value) == seen && !_disposed)
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

            seen = Volatile.Read(ref _published.Value);
            if (TryTake(index, seen))
            {
                RunShare(Volatile.Read(ref _work)!, Volatile.Read(ref _items), index, index);
                Interlocked.Decrement(ref _pending.Value);
            }
        }
    }

    private void Sleep(long seen)
    {
        lock (_gate)
        {
            Interlocked.Increment(ref _sleepers);
            while (Volatile.Read(ref _published.Value) == seen && !_disposed)
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

    /// <summary>A long alone on its 128-byte stretch (two cache lines: adjacent-line prefetch), so spinning on one word
    /// does not contend with writes to another.</summary>
    [System.Runtime.InteropServices.StructLayout(System.Runtime.InteropServices.LayoutKind.Explicit, Size = 256)]
    private struct PaddedLong
    {
        [System.Runtime.InteropServices.FieldOffset(128)]
        public long Value;
    }
}
