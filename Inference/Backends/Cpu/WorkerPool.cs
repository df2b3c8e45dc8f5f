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
/// A fixed set of threads that spin on a shared state word between operations, so dispatching an operation costs a cache
/// line round trip rather than a <c>Task</c> (at ~1 ms per token and ~30 operations per token, a 20 µs wake-up per operation
/// would cost more than the arithmetic). The calling thread is worker 0. Workers that stay idle for
/// <see cref="SpinBeforeSleep"/> block on a monitor so an idle engine burns no CPU.
/// </summary>
/// <remarks>
/// Items are claimed dynamically, a few per claim, from one 64-bit word holding (generation, item count, next item), and
/// the caller returns as soon as every item is done. A worker that the OS has not scheduled yet therefore never holds the
/// caller up: the caller takes its share too. With a static split (each worker owning half the rows, the previous design)
/// the caller waited for the other thread's half, which on a machine shared by more busy threads than cores meant waiting
/// a whole scheduler time slice for a thread that had not run yet, dozens of times per token.
/// </remarks>
internal sealed class WorkerPool : IDisposable
{
    // Between the operations of a step the gap is a few microseconds; between steps (sampling, detokenising, the HTTP layer)
    // it is tens of microseconds. 2 ms keeps workers hot across steps and still lets an idle server go quiet.
    private static readonly long SpinBeforeSleep = Stopwatch.Frequency / 500;

    // State word: bits 0–19 next unclaimed item, 20–39 item count, 40–63 generation (wraps; a claim compares the whole word).
    private const int ItemBits = 20;
    private const long ItemMask = (1L << ItemBits) - 1;

    /// <summary>Most items one operation may have.</summary>
    public const int MaxItems = (int)ItemMask;

    // Claims per worker and operation: enough that a late worker still finds work, few enough that the compare-exchange on
    // a shared cache line (~0.1 µs between cores) stays negligible against the items themselves.
    private const int ClaimsPerWorker = 4;

    private readonly Thread[] _threads;
    private readonly object _gate = new();
    private IParallelWork? _work;
    private long _state;
    private int _done;
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

        if (items > MaxItems)
        {
            throw new ArgumentOutOfRangeException(nameof(work), items, $"An operation has at most {MaxItems} items.");
        }

        _work = work;
        Volatile.Write(ref _done, 0);
        var generation = (Volatile.Read(ref _state) >> (2 * ItemBits)) + 1;
        Volatile.Write(ref _state, (generation << (2 * ItemBits)) | ((long)items << ItemBits));
        if (Volatile.Read(ref _sleepers) > 0)
        {
            lock (_gate)
            {
                Monitor.PulseAll(_gate);
            }
        }

        ClaimAndRun(0);
        var spinner = new SpinWait();
        while (Volatile.Read(ref _done) < items)
        {
            spinner.SpinOnce(sleep1Threshold: -1);
        }

        _work = null;
        if (Interlocked.Exchange(ref _failure, null) is { } failure)
        {
            throw new InvalidOperationException("A CPU backend operation failed.", failure);
        }
    }

    /// <summary>Claims ranges of the current operation until none is left. A claim succeeds only while its operation is
    /// current, and the operation cannot end before the claimed items are counted done, so <see cref="_work"/> read after a
    /// claim is that operation's.</summary>
    private void ClaimAndRun(int worker)
    {
        while (true)
        {
            var state = Volatile.Read(ref _state);
            var next = (int)(state & ItemMask);
            var items = (int)((state >> ItemBits) & ItemMask);
            if (next >= items)
            {
                return;
            }

            var claim = Math.Max(1, items / (ThreadCount * ClaimsPerWorker));
            var end = Math.Min(items, next + claim);
            if (Interlocked.CompareExchange(ref _state, (state & ~ItemMask) | (long)end, state) != state)
            {
                continue;
            }

            try
            {
                Volatile.Read(ref _work)!.Execute(next, end, worker);
            }
            catch (Exception e)
            {
                // Recorded and rethrown by Run; the other items still run so that every item is counted done.
                Interlocked.CompareExchange(ref _failure, e, null);
            }

            Interlocked.Add(ref _done, end - next);
        }
    }

    private void WorkerLoop(int index)
    {
        var seen = 0L;
        while (true)
        {
            var start = Stopwatch.GetTimestamp();
            var spinner = new SpinWait();
            while (Volatile.Read(ref _state) >> (2 * ItemBits) == seen && !_disposed)
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

            seen = Volatile.Read(ref _state) >> (2 * ItemBits);
            ClaimAndRun(index);
        }
    }

    private void Sleep(long seen)
    {
        lock (_gate)
        {
            Interlocked.Increment(ref _sleepers);
            while (Volatile.Read(ref _state) >> (2 * ItemBits) == seen && !_disposed)
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
}
