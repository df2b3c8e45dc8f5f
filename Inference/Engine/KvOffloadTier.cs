namespace AspireAi.Inference.Engine;

/// <summary>A KV block copy the engine issues before the step's forward pass, in the order recorded.</summary>
/// <param name="ToHost">Device block → host slot (a cached block evicted from the device); otherwise host slot → device block.</param>
internal readonly record struct KvBlockCopy(bool ToHost, int DeviceBlock, int HostSlot);

/// <summary>
/// Bookkeeping of the offload tier (the second tier of the prefix cache, vLLM's CPU swap space / LMCache's CPU backend): a
/// bounded set of host slots, each holding one full block's keys and values, found by the block's chained hash (checked
/// against its parent hash and tokens, as the device tier checks them), least recently used evicted first when full.
/// A slot's contents never change while it holds a block, so a block can be on the device and on the host at once.
/// </summary>
internal sealed class KvOffloadTier
{
    private readonly Dictionary<ulong, int> _slots = [];
    private readonly ulong[] _hashes;
    private readonly ulong[] _parentHashes;
    private readonly int[][] _tokens;
    private readonly LinkedList<int> _lru = new(); // occupied slots, least recently used first
    private readonly LinkedListNode<int>[] _nodes;
    private readonly Stack<int> _free;

    public KvOffloadTier(int slots, int blockSize)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(slots);
        Capacity = slots;
        _hashes = new ulong[slots];
        _parentHashes = new ulong[slots];
        _tokens = new int[slots][];
        _nodes = new LinkedListNode<int>[slots];
        for (var s = 0; s < slots; s++)
        {
            _tokens[s] = new int[blockSize];
            _nodes[s] = new LinkedListNode<int>(s);
        }

        _free = new Stack<int>(Enumerable.Range(0, slots).Reverse());
    }

    public int Capacity { get; }

    public int Used => _slots.Count;

    /// <summary>Blocks copied to the host, and blocks dropped from it to make room (both since the engine started).</summary>
    public long Stored { get; private set; }

    public long Evicted { get; private set; }

    /// <summary>Blocks copied back to the device (every prefix hit here, re-admissions after preemption included).</summary>
    public long Loaded { get; private set; }

    /// <summary>
    /// The slot holding the block with this hash, parent and tokens, marked most recently used and counted as loaded (the
    /// caller copies it back); −1 when none does.
    /// </summary>
    public int Find(ulong hash, ulong parent, ReadOnlySpan<int> tokens)
    {
        if (!_slots.TryGetValue(hash, out var slot) || _parentHashes[slot] != parent || !tokens.SequenceEqual(_tokens[slot]))
        {
            return -1;
        }

        Touch(slot);
        Loaded++;
        return slot;
    }

    /// <summary>
    /// A slot for a block leaving the device: −1 when the host already holds it (nothing to copy; it becomes most recently
    /// used) or when the only slot that could be reused is <paramref name="keep"/> (a slot whose copy to the device is
    /// being recorded). Otherwise a free slot, or the least recently used one's, now registered for the block.
    /// </summary>
    public int Store(ulong hash, ulong parent, ReadOnlySpan<int> tokens, int keep = -1)
    {
        if (_slots.TryGetValue(hash, out var existing))
        {
            Touch(existing);
            return -1; // the same hash under another parent or tokens is a collision: the first one stays
        }

        if (!_free.TryPop(out var slot))
        {
            var victim = _lru.First!;
            if (victim.Value == keep)
            {
                victim = victim.Next;
            }

            if (victim is null)
            {
                return -1;
            }

            slot = victim.Value;
            _lru.Remove(victim);
            _slots.Remove(_hashes[slot]);
            Evicted++;
        }

        _slots.Add(hash, slot);
        _hashes[slot] = hash;
        _parentHashes[slot] = parent;
        tokens.CopyTo(_tokens[slot]);
        _lru.AddLast(_nodes[slot]);
        Stored++;
        return slot;
    }

    private void Touch(int slot)
    {
        _lru.Remove(_nodes[slot]);
        _lru.AddLast(_nodes[slot]);
    }
}
