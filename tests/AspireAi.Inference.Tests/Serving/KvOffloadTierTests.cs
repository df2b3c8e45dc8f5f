using AspireAi.Inference.Backends;
using AspireAi.Inference.Backends.Cpu;
using AspireAi.Inference.Engine;

namespace AspireAi.Inference.Tests.Serving;

/// <summary>
/// The KV offload tier's bookkeeping in the block manager (which copies it records, in which order, what it finds again, its
/// LRU bound) and the CPU backend's block copies.
/// </summary>
public sealed class KvOffloadTierTests
{
    private static Sequence Sequence(int id, params int[] tokens) =>
        new(id, new EngineRequest { PromptTokenIds = tokens, MaxTokens = 1 }, 100, null);

    private static int[] Tokens(int count, int start) => Enumerable.Range(start, count).ToArray();

    /// <summary>Allocates, marks everything computed and registers the full blocks, as the engine does after a forward pass.</summary>
    private static Sequence Computed(BlockManager blocks, int id, int[] tokens)
    {
        var s = Sequence(id, tokens);
        blocks.AllocateCachedPrefix(s, countQuery: false);
        Assert.True(blocks.TryAllocate(s, s.TokenCount));
        s.ComputedTokens = s.TokenCount;
        blocks.CacheFullBlocks(s);
        return s;
    }

    [Fact]
    public void Evicted_cached_block_goes_to_the_host_and_comes_back_into_a_new_block()
    {
        var blocks = new BlockManager(2, 4, offloadBlocks: 4);
        var a = Computed(blocks, 1, Tokens(4, 0));
        var aBlock = a.BlockTable[0];
        blocks.Free(a);
        Assert.Empty(blocks.PendingCopies);

        // Two blocks of other traffic: the never-cached block goes first, then a's cached block is evicted to the host.
        var b = Computed(blocks, 2, Tokens(8, 50));
        Assert.Equal([new KvBlockCopy(ToHost: true, aBlock, 0)], blocks.PendingCopies);
        blocks.PendingCopies.Clear();
        blocks.Free(b);

        var c = Sequence(3, [.. Tokens(4, 0), 99]);
        Assert.Equal(4, blocks.AllocateCachedPrefix(c, countQuery: true));
        Assert.Equal(4, c.ComputedTokens);
        // b's last block (block 0, freed first, so least recently used) goes to slot 1 before slot 0 is copied into it.
        Assert.Equal([new KvBlockCopy(ToHost: true, 0, 1), new KvBlockCopy(ToHost: false, 0, 0)], blocks.PendingCopies);
        Assert.Equal((0L, 4L, 5L, 5L), (blocks.PrefixHits, blocks.OffloadHits, blocks.PrefixQueries, blocks.OffloadQueries));
        Assert.Equal(2, blocks.Offload!.Used);

        // The block copied back is an ordinary cached block again: a second sequence shares it on the device.
        var d = Sequence(4, [.. Tokens(4, 0), 98]);
        blocks.PendingCopies.Clear();
        Assert.Equal(4, blocks.AllocateCachedPrefix(d, countQuery: true));
        Assert.Equal(c.BlockTable[0], d.BlockTable[0]);
        Assert.Empty(blocks.PendingCopies);
        Assert.Equal(4, blocks.PrefixHits);
    }

    [Fact]
    public void Host_tier_holds_at_most_its_capacity_and_drops_the_least_recently_used()
    {
        var tier = new KvOffloadTier(2, 4);
        int[][] blocks = [Tokens(4, 0), Tokens(4, 10), Tokens(4, 20)];
        Assert.Equal(0, tier.Store(1, 0, blocks[0]));
        Assert.Equal(1, tier.Store(2, 0, blocks[1]));
        Assert.Equal(0, tier.Find(1, 0, blocks[0])); // block 1 is now the most recently used
        Assert.Equal(1, tier.Store(3, 0, blocks[2])); // so block 2's slot is reused
        Assert.Equal(-1, tier.Find(2, 0, blocks[1]));
        Assert.Equal(0, tier.Find(1, 0, blocks[0]));
        Assert.Equal(1, tier.Find(3, 0, blocks[2]));
        Assert.Equal(-1, tier.Store(3, 0, blocks[2])); // already held: nothing to copy
        Assert.Equal((2, 3L, 1L), (tier.Used, tier.Stored, tier.Evicted));

        // A hash found under another parent or other tokens (a collision) is a miss.
        Assert.Equal(-1, tier.Find(1, 7, blocks[0]));
        Assert.Equal(-1, tier.Find(1, 0, blocks[1]));

        // The slot being copied back is never the one reused for a block leaving the device.
        var single = new KvOffloadTier(1, 4);
        Assert.Equal(0, single.Store(1, 0, blocks[0]));
        Assert.Equal(-1, single.Store(2, 0, blocks[1], keep: 0));
        Assert.Equal(0, single.Find(1, 0, blocks[0]));
    }

    [Fact]
    public void Swap_in_with_a_single_host_slot_does_not_overwrite_the_slot_it_reads()
    {
        var blocks = new BlockManager(1, 4, offloadBlocks: 1);
        blocks.Free(Computed(blocks, 1, Tokens(4, 0)));
        blocks.Free(Computed(blocks, 2, Tokens(4, 10))); // evicts block [0..4) to the only slot
        blocks.PendingCopies.Clear();

        var again = Sequence(3, [.. Tokens(4, 0), 5]);
        Assert.Equal(4, blocks.AllocateCachedPrefix(again, countQuery: true));
        // [10..14) leaves the device but has nowhere to go: only the slot being read exists.
        Assert.Equal([new KvBlockCopy(ToHost: false, 0, 0)], blocks.PendingCopies);
    }

    [Fact]
    public unsafe void Cpu_backend_copies_a_block_of_every_layer_to_the_host_and_back_exactly()
    {
        using var backend = new CpuBackend(1);
        var shape = new KvCacheShape(Layers: 3, KvHeads: 2, HeadDim: 8, BlockSize: 4, BlockCount: 5);
        using var cache = (CpuKvCache)backend.CreateKvCache(shape);
        using var store = backend.CreateKvOffloadStore(shape, 3);
        var random = new Random(1);
        var floats = (int)(shape.SlotCount * shape.KvHeads * shape.HeadDim);
        for (var l = 0; l < shape.Layers; l++)
        {
            for (var i = 0; i < floats; i++)
            {
                ((float*)cache.Keys(l, 0))[i] = random.NextSingle() - 0.5f;
                ((float*)cache.Values(l, 0))[i] = random.NextSingle() - 0.5f;
            }
        }

        var blockFloats = shape.BlockSize * shape.KvHeads * shape.HeadDim;
        float[] Block(int layer, int block, bool values) =>
            new Span<float>(values ? (float*)cache.Values(layer, block * shape.BlockSize) : (float*)cache.Keys(layer, block * shape.BlockSize), blockFloats).ToArray();

        var expected = Enumerable.Range(0, shape.Layers).Select(l => (Block(l, 3, false), Block(l, 3, true))).ToArray();
        var neighbours = Enumerable.Range(0, shape.Layers).Select(l => (Block(l, 0, false), Block(l, 2, true))).ToArray();
        backend.CopyKvBlockToHost(cache, 3, store, 2);
        backend.CopyKvBlockFromHost(store, 2, cache, 1);
        for (var l = 0; l < shape.Layers; l++)
        {
            Assert.Equal(expected[l].Item1, Block(l, 1, false));
            Assert.Equal(expected[l].Item2, Block(l, 1, true));
            Assert.Equal(neighbours[l].Item1, Block(l, 0, false)); // blocks beside it untouched
            Assert.Equal(neighbours[l].Item2, Block(l, 2, true));
        }

        Assert.Throws<ArgumentOutOfRangeException>(() => backend.CopyKvBlockToHost(cache, 5, store, 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => backend.CopyKvBlockFromHost(store, 3, cache, 0));
        using var other = backend.CreateKvCache(shape with { HeadDim = 4 });
        Assert.Throws<ArgumentException>(() => backend.CopyKvBlockToHost(other, 0, store, 0));
    }
}
