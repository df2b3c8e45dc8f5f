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
/// A fixed set of threads that spin on a shared word between operations, so dispatching an operation costs a cache line
/// round trip rather than a <c>Task</c> (at ~0.5 ms per token and ~30 operations per token, a 20 µs wake-up per operation
/// would cost more than the arithmetic). The calling thread is worker 0. Workers that stay idle for
/// <see cref="SpinBeforeSleep"/> block on a monitor so an idle engine burns no CPU.
/// </summary>
/// <remarks>
/// Each worker owns a contiguous share of an operation's items (the static split) and claims them a few at a time from a
/// counter on its own cache line, so claiming costs no traffic between cores; a worker that runs out takes the rest of
/// the other shares from their counters, and the caller returns as soon as every item is done. A worker that the OS has
/// not scheduled yet therefore never holds the caller up: the caller works through that share too. With a purely static
/// split (the previous design) the caller waited for the other thread's half, which on a machine shared by more busy
/// threads than cores meant waiting a whole scheduler time slice for a thread that had not run yet. A single shared claim
/// counter (tried first) fixed that but cost ~15 % of a Q4_0 decode step on an idle machine: every claim moved the
/// counter's cache line between the cores.
/// </remarks>
internal sealed class WorkerPool : IDisposable
{
    // Between the operations of a step the gap is a few microseconds; between steps (sampling, detokenising, the HTTP layer)
    // it is tens of microseconds. 2 ms keeps workers hot across steps and still lets an idle server go quiet.
    private static readonly long SpinBeforeSleep = Stopwatch.Frequency / 500;

    // A share's word: bits 0–19 next unclaimed item, 20–39 end of the share, 40–63 generation (wraps; a claim compares the
    // whole word, so a worker still busy with an old operation cannot claim in a new one).
    private const int ItemBits = 20;
    private const long ItemMask = (1L << ItemBits) - 1;

    /// <summary>Most items one operation may have.</summary>
    public const int MaxItems = (int)ItemMask;

    // Claims per share: small enough that a share can still be taken over in part, large enough to keep claims cheap.
    private const int ClaimsPerShare = 4;

    private readonly Thread[] _threads;
    private readonly object _gate = new();
    private readonly PaddedLong[] _shares;
    private PaddedLong _published;
    private PaddedLong _done;
    private IParallelWork? _work;
    private long _generation;
    private int _claim;
    private int _sleepers;
    private volatile bool _disposed;
    private Exception? _failure;

    public WorkerPool(int threadCount)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(threadCount);
        ThreadCount = threadCount;
        _shares = new PaddedLong[threadCount];
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
        _claim = Math.Max(1, items / (ThreadCount * ClaimsPerShare));
        Volatile.Write(ref _done.Value, 0);
        var generation = (_generation + 1) & ((1L << (64 - 2 * ItemBits)) - 1);
        _generation = generation;
        for (var w = 0; w < ThreadCount; w++)
        {
            var start = (long)items * w / ThreadCount;
            var end = (long)items * (w + 1) / ThreadCount;
            Volatile.Write(ref _shares[w].Value, (generation << (2 * ItemBits)) | (end << ItemBits) | start);
        }

        Volatile.Write(ref _published.Value, generation);
        if (Volatile.Read(ref _sleepers) > 0)
        {
            lock (_gate)
            {
                Monitor.PulseAll(_gate);
            }
        }

        ClaimAndRun(0, generation);
        var spinner = new SpinWait();
        while (Volatile.Read(ref _done.Value) < items)
        {
            spinner.SpinOnce(sleep1Threshold: -1);
        }

        _work = null;
        if (Interlocked.Exchange(ref _failure, null) is { } failure)
        {
            throw new InvalidOperationException("A CPU backend operation failed.", failure);
        }
    }

    /// <summary>Claims items of operation <paramref name="generation"/>, own share first, then the others', until none is
    /// left. A claim succeeds only while its operation is current, and the operation cannot end before the claimed items
    /// are counted done, so <see cref="_work"/> read after a claim is that operation's.</summary>
    private void ClaimAndRun(int worker, long generation)
    {
        var completed = 0;
        for (var k = 0; k < ThreadCount; k++)
        {
            ref var share = ref _shares[(worker + k) % ThreadCount].Value;
            while (true)
            {
                var state = Volatile.Read(ref share);
                if (state >>> (2 * ItemBits) != generation)
                {
                    break;
                }

                var next = (int)(state & ItemMask);
                var end = (int)((state >> ItemBits) & ItemMask);
                if (next >= end)
                {
                    break;
                }

                var claimEnd = Math.Min(end, next + Volatile.Read(ref _claim));
                if (Interlocked.CompareExchange(ref share, (state & ~ItemMask) | (long)claimEnd, state) != state)
                {
                    continue;
                }

                try
                {
                    Volatile.Read(ref _work)!.Execute(next, claimEnd, worker);
                }
                catch (Exception e)
                {
                    // Recorded and rethrown by Run; the other items still run so that every item is counted done.
                    Interlocked.CompareExchange(ref _failure, e, null);
                }

                completed += claimEnd - next;
            }
        }

        if (completed > 0)
        {
            Interlocked.Add(ref _done.Value, completed);
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
            ClaimAndRun(index, seen);
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
