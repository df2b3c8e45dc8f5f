using System.IO.Hashing;
using System.Runtime.InteropServices;

namespace AspireAi.Inference.Engine;

/// <summary>
/// Owns the paged KV cache's blocks (vLLM's KV cache manager, nano-vllm's BlockManager): a free list, per-sequence block
/// tables, reference counts and <b>prefix caching</b>. A block whose tokens are all computed is identified by a chained hash
/// of its tokens and its parent block's hash, so two requests with the same leading tokens share those blocks. Freed blocks
/// that carry a hash stay findable in an LRU until their space is needed (evicted least recently freed first); blocks
/// without one are reused before them.
/// With an offload tier (<see cref="KvOffloadTier"/>), a cached block evicted from the device is first copied to a host slot,
/// and a prefix lookup that misses on the device but finds the block's hash on the host copies it back into a new device
/// block instead of computing it again. The copies are recorded in <see cref="PendingCopies"/>, in the order they must run,
/// for the engine to issue before the step's forward pass.
/// </summary>
/// <remarks>
/// Copy-on-write: a sequence never writes into a block it shares. When its next token to compute falls in a shared or
/// cached block (a prompt that is entirely cached still needs its last token's logits), <see cref="CopyOnWrite"/> gives
/// it a private block instead and rolls its computed count back to the block's start, so the block's tokens are computed
/// again into the copy. Recomputing (at most one block of prefill) stands in for a device-to-device copy, which the backend seam does
/// not offer (it copies blocks only to and from the offload tier); the outcome is the same private copy.
/// </remarks>
internal sealed class BlockManager
{
    private const int None = -1;

    private readonly int[] _refCounts;
    private readonly ulong[] _hashes;
    private readonly ulong[] _parentHashes;
    private readonly bool[] _hashed;
    private readonly int[][] _tokens;
    private readonly Dictionary<ulong, int> _cached = [];
    private readonly KvOffloadTier? _offload;

    // The free list, oldest first, threaded through the blocks (O(1) removal when a cached block is reused).
    private readonly int[] _previous;
    private readonly int[] _next;
    private readonly bool[] _isFree;
    private int _head = None;
    private int _tail = None;

    /// <param name="offloadBlocks">Host slots of the offload tier (0: none).</param>
    public BlockManager(int blockCount, int blockSize, int offloadBlocks = 0)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(blockCount);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(blockSize);
        BlockCount = blockCount;
        BlockSize = blockSize;
        _refCounts = new int[blockCount];
        _hashes = new ulong[blockCount];
        _parentHashes = new ulong[blockCount];
        _hashed = new bool[blockCount];
        _tokens = new int[blockCount][];
        _previous = new int[blockCount];
        _next = new int[blockCount];
        _isFree = new bool[blockCount];
        for (var b = 0; b < blockCount; b++)
        {
            Append(b);
        }

        _offload = offloadBlocks > 0 ? new KvOffloadTier(offloadBlocks, blockSize) : null;
    }

    /// <summary>The offload tier's bookkeeping; null without one.</summary>
    public KvOffloadTier? Offload => _offload;

    /// <summary>Block copies between the tiers that the engine must issue, in this order, before the next forward pass.</summary>
    public List<KvBlockCopy> PendingCopies { get; } = [];

    public int BlockCount { get; }

    public int BlockSize { get; }

    /// <summary>Blocks no sequence holds (including cached ones, which can be evicted).</summary>
    public int FreeBlocks { get; private set; }

    /// <summary>Free blocks that still hold a cached prefix.</summary>
    public int CachedFreeBlocks => _cached.Count - _cached.Values.Count(b => _refCounts[b] > 0);

    /// <summary>Fraction of blocks held by sequences (vLLM's <c>kv_cache_usage_perc</c>, 0…1).</summary>
    public double Usage => (double)(BlockCount - FreeBlocks) / BlockCount;

    /// <summary>Prompt tokens looked up in the prefix cache, and how many of them were found (vLLM counts tokens).</summary>
    public long PrefixQueries { get; private set; }

    public long PrefixHits { get; private set; }

    /// <summary>Prompt tokens looked up in the offload tier (those the device tier did not have), and how many it had.</summary>
    public long OffloadQueries { get; private set; }

    public long OffloadHits { get; private set; }

    public int BlocksFor(int tokens) => (tokens + BlockSize - 1) / BlockSize;

    /// <summary>
    /// For a sequence with no blocks: takes the longest run of leading full blocks already cached, sets its computed count
    /// to them and returns the number of tokens found. A block missing on the device but held by the offload tier is copied
    /// back into a free device block (while one is free) and counts as a hit of the second tier.
    /// </summary>
    public int AllocateCachedPrefix(Sequence sequence, bool countQuery)
    {
        if (sequence.BlockTable.Count != 0)
        {
            throw new InvalidOperationException($"Sequence {sequence.Id} already holds blocks.");
        }

        var tokens = CollectionsMarshal.AsSpan((List<int>)sequence.Tokens);
        var parent = 0UL;
        var hits = 0;
        var offloadHits = 0;
        for (var i = 0; (i + 1) * BlockSize <= tokens.Length; i++)
        {
            var blockTokens = tokens.Slice(i * BlockSize, BlockSize);
            var hash = Hash(parent, blockTokens);
            if (_cached.TryGetValue(hash, out var block) && _parentHashes[block] == parent && blockTokens.SequenceEqual(_tokens[block]))
            {
                if (_refCounts[block]++ == 0)
                {
                    Remove(block);
                }
            }
            else if (SwapIn(hash, parent, blockTokens) is var swapped and >= 0)
            {
                block = swapped;
                offloadHits++;
            }
            else
            {
                break;
            }

            sequence.BlockTable.Add(block);
            sequence.BlockHashes.Add(hash);
            parent = hash;
            hits++;
        }

        sequence.ComputedTokens = hits * BlockSize;
        if (countQuery)
        {
            PrefixQueries += tokens.Length;
            PrefixHits += (hits - offloadHits) * BlockSize;
            if (_offload is not null)
            {
                OffloadQueries += tokens.Length - (hits - offloadHits) * BlockSize;
                OffloadHits += offloadHits * BlockSize;
            }
        }

        return hits * BlockSize;
    }

    /// <summary>
    /// When the offload tier holds the block and a device block is free: takes that block (held once, registered in the
    /// device tier's cache) and records the copy into it; otherwise −1.
    /// </summary>
    private int SwapIn(ulong hash, ulong parent, ReadOnlySpan<int> blockTokens)
    {
        if (_offload is null || FreeBlocks == 0 || _offload.Find(hash, parent, blockTokens) is not (>= 0 and var slot))
        {
            return -1;
        }

        // Taking the block may send the block it held to the host: never into the slot being read (the copies run in order).
        var block = TakeFreeBlock(keepSlot: slot);
        PendingCopies.Add(new KvBlockCopy(ToHost: false, block, slot));
        if (_cached.TryAdd(hash, block))
        {
            _hashed[block] = true;
            _hashes[block] = hash;
            _parentHashes[block] = parent;
            blockTokens.CopyTo(_tokens[block] ??= new int[BlockSize]);
        }

        return block;
    }

    /// <summary>
    /// Takes the free block at the head of the free list (held once). A cached one is evicted from the device tier, and its
    /// contents go to the offload tier first when there is one.
    /// </summary>
    private int TakeFreeBlock(int keepSlot = -1)
    {
        var block = _head;
        Remove(block);
        if (_hashed[block])
        {
            // Evict the least recently freed cached prefix.
            if (_offload?.Store(_hashes[block], _parentHashes[block], _tokens[block], keepSlot) is >= 0 and var slot)
            {
                PendingCopies.Add(new KvBlockCopy(ToHost: true, block, slot));
            }

            _cached.Remove(_hashes[block]);
            _hashed[block] = false;
        }

        _refCounts[block] = 1;
        return block;
    }

    /// <summary>
    /// Copy-on-write: makes sure the block that the sequence's next computed token goes to is its own (see remarks). A
    /// sequence whose tokens are all cached still computes its last token (its logits are needed).
    /// </summary>
    public void CopyOnWrite(Sequence sequence)
    {
        var position = Math.Min(sequence.ComputedTokens, sequence.TokenCount - 1);
        var index = position / BlockSize;
        if (index >= sequence.BlockTable.Count)
        {
            return;
        }

        var block = sequence.BlockTable[index];
        if (_refCounts[block] == 1 && !_hashed[block] && position == sequence.ComputedTokens)
        {
            return;
        }

        // Everything from this block on is computed again into blocks of its own (allocated by TryAllocate).
        for (var i = sequence.BlockTable.Count - 1; i >= index; i--)
        {
            Release(sequence.BlockTable[i]);
            sequence.BlockTable.RemoveAt(i);
        }

        if (sequence.BlockHashes.Count > index)
        {
            sequence.BlockHashes.RemoveRange(index, sequence.BlockHashes.Count - index);
        }

        sequence.ComputedTokens = index * BlockSize;
    }

    /// <summary>Extends the sequence's block table to cover <paramref name="tokens"/> positions; false (nothing taken) when too few are free.</summary>
    public bool TryAllocate(Sequence sequence, int tokens)
    {
        var needed = BlocksFor(tokens) - sequence.BlockTable.Count;
        if (needed <= 0)
        {
            return true;
        }

        if (needed > FreeBlocks)
        {
            return false;
        }

        for (var i = 0; i < needed; i++)
        {
            sequence.BlockTable.Add(TakeFreeBlock());
        }

        return true;
    }

    /// <summary>Registers every block that has become full of computed tokens in the prefix cache.</summary>
    public void CacheFullBlocks(Sequence sequence)
    {
        var full = sequence.ComputedTokens / BlockSize;
        if (sequence.BlockHashes.Count >= full)
        {
            return;
        }

        var tokens = CollectionsMarshal.AsSpan((List<int>)sequence.Tokens);
        var parent = sequence.BlockHashes.Count == 0 ? 0UL : sequence.BlockHashes[^1];
        for (var i = sequence.BlockHashes.Count; i < full; i++)
        {
            var blockTokens = tokens.Slice(i * BlockSize, BlockSize);
            var hash = Hash(parent, blockTokens);
            var block = sequence.BlockTable[i];
            // A block another sequence computed with the same tokens first stays the cached one; this copy is private.
            if (!_hashed[block] && _cached.TryAdd(hash, block))
            {
                _hashed[block] = true;
                _hashes[block] = hash;
                _parentHashes[block] = parent;
                var copy = _tokens[block] ??= new int[BlockSize];
                blockTokens.CopyTo(copy);
            }

            sequence.BlockHashes.Add(hash);
            parent = hash;
        }
    }

    /// <summary>Returns the sequence's blocks (cached ones stay findable until evicted); its computed count drops to 0.</summary>
    public void Free(Sequence sequence)
    {
        // Last block first: its cached copy is then evicted before the leading blocks, which more requests share.
        for (var i = sequence.BlockTable.Count - 1; i >= 0; i--)
        {
            Release(sequence.BlockTable[i]);
        }

        sequence.BlockTable.Clear();
        sequence.BlockHashes.Clear();
        sequence.ComputedTokens = 0;
    }

    /// <summary>The KV-cache slot of <paramref name="position"/> in the sequence.</summary>
    public int Slot(Sequence sequence, int position) =>
        sequence.BlockTable[position / BlockSize] * BlockSize + position % BlockSize;

    private void Release(int block)
    {
        if (_refCounts[block] <= 0)
        {
            throw new InvalidOperationException($"Block {block} freed more often than allocated.");
        }

        if (--_refCounts[block] > 0)
        {
            return;
        }

        if (_hashed[block])
        {
            Append(block);
        }
        else
        {
            Prepend(block);
        }
    }

    private static ulong Hash(ulong parent, ReadOnlySpan<int> tokens)
    {
        var hasher = new XxHash3();
        hasher.Append(MemoryMarshal.AsBytes(new ReadOnlySpan<ulong>(in parent)));
        hasher.Append(MemoryMarshal.AsBytes(tokens));
        return hasher.GetCurrentHashAsUInt64();
    }

    private void Append(int block)
    {
        _previous[block] = _tail;
        _next[block] = None;
        if (_tail == None)
        {
            _head = block;
        }
        else
        {
            _next[_tail] = block;
        }

        _tail = block;
        _isFree[block] = true;
        FreeBlocks++;
    }

    private void Prepend(int block)
    {
        _previous[block] = None;
        _next[block] = _head;
        if (_head == None)
        {
            _tail = block;
        }
        else
        {
            _previous[_head] = block;
        }

        _head = block;
        _isFree[block] = true;
        FreeBlocks++;
    }

    private void Remove(int block)
    {
        if (!_isFree[block])
        {
            throw new InvalidOperationException($"Block {block} is not free.");
        }

        var (p, n) = (_previous[block], _next[block]);
        if (p == None)
        {
            _head = n;
        }
        else
        {
            _next[p] = n;
        }

        if (n == None)
        {
            _tail = p;
        }
        else
        {
            _previous[n] = p;
        }

        _isFree[block] = false;
        FreeBlocks--;
    }
}
