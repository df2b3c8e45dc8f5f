namespace AspireAi.Inference.Engine;

/// <summary>
/// Hands out the KV cache's fixed-size blocks from a free list. The single-sequence generator uses it as is; the serving
/// scheduler replaces it with a block manager (reference counts, prefix caching) over the same block ids.
/// </summary>
public sealed class KvBlockPool
{
    private readonly Stack<int> _free;

    public KvBlockPool(int blockCount, int blockSize)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(blockCount);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(blockSize);
        BlockCount = blockCount;
        BlockSize = blockSize;
        _free = new Stack<int>(Enumerable.Range(0, blockCount).Reverse());
    }

    public int BlockCount { get; }

    public int BlockSize { get; }

    public int FreeCount => _free.Count;

    public bool TryAllocate(out int block) => _free.TryPop(out block);

    public void Free(int block)
    {
        if ((uint)block >= (uint)BlockCount)
        {
            throw new ArgumentOutOfRangeException(nameof(block), block, $"Block ids run from 0 to {BlockCount - 1}.");
        }

        _free.Push(block);
    }
}

/// <summary>One sequence's block table: position p is stored in block <c>Blocks[p / BlockSize]</c> at offset <c>p % BlockSize</c>.</summary>
public sealed class SequenceBlocks(KvBlockPool pool)
{
    private readonly List<int> _blocks = [];

    public IReadOnlyList<int> Blocks => _blocks;

    /// <summary>Room for positions 0…tokens−1; false when the pool ran out (nothing is taken then).</summary>
    public bool TryReserve(int tokens)
    {
        var needed = (tokens + pool.BlockSize - 1) / pool.BlockSize - _blocks.Count;
        if (needed > pool.FreeCount)
        {
            return false;
        }

        for (var i = 0; i < needed; i++)
        {
            pool.TryAllocate(out var block);
            _blocks.Add(block);
        }

        return true;
    }

    /// <summary>The KV-cache slot of <paramref name="position"/>.</summary>
    public int Slot(int position) => _blocks[position / pool.BlockSize] * pool.BlockSize + position % pool.BlockSize;

    public void CopyTableTo(Span<int> destination)
    {
        for (var i = 0; i < _blocks.Count; i++)
        {
            destination[i] = _blocks[i];
        }
    }

    /// <summary>Returns every block to the pool.</summary>
    public void Release()
    {
        foreach (var block in _blocks)
        {
            pool.Free(block);
        }

        _blocks.Clear();
    }
}
