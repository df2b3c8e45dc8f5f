using AspireAi.Inference.Engine;

namespace AspireAi.Inference.Tests.Serving;

/// <summary>The block manager on its own: reference counts, prefix hits, copy-on-write, LRU eviction of cached blocks.</summary>
public sealed class BlockManagerTests
{
    private static Sequence Sequence(int id, params int[] tokens) =>
        new(id, new EngineRequest { PromptTokenIds = tokens, MaxTokens = 1 }, 100, null);

    private static int[] Tokens(int count, int start) => Enumerable.Range(start, count).ToArray();

    /// <summary>Marks everything computed, as the engine does after a forward pass.</summary>
    private static void Compute(BlockManager blocks, Sequence s)
    {
        Assert.True(blocks.TryAllocate(s, s.TokenCount));
        s.ComputedTokens = s.TokenCount;
        blocks.CacheFullBlocks(s);
    }

    [Fact]
    public void Shared_prefix_blocks_are_reference_counted_and_outlive_their_first_owner()
    {
        var blocks = new BlockManager(8, 4);
        var first = Sequence(1, Tokens(10, 0));
        Assert.Equal(0, blocks.AllocateCachedPrefix(first, countQuery: true));
        Compute(blocks, first);
        Assert.Equal(5, blocks.FreeBlocks); // 10 tokens → 3 blocks

        var second = Sequence(2, [.. Tokens(8, 0), 50, 51, 52]);
        Assert.Equal(8, blocks.AllocateCachedPrefix(second, countQuery: true));
        Assert.Equal(first.BlockTable.Take(2), second.BlockTable);
        blocks.Free(first);
        // The two shared blocks are still held by the second sequence; the first's third block is cached and free.
        Assert.Equal(6, blocks.FreeBlocks);
        Assert.Equal(8, blocks.PrefixHits);
        Assert.Equal(21, blocks.PrefixQueries);
    }

    [Fact]
    public void Fully_cached_sequence_gets_a_private_copy_of_its_last_block()
    {
        var blocks = new BlockManager(8, 4);
        var first = Sequence(1, Tokens(8, 0));
        blocks.AllocateCachedPrefix(first, countQuery: true);
        Compute(blocks, first);

        var second = Sequence(2, Tokens(8, 0));
        Assert.Equal(8, blocks.AllocateCachedPrefix(second, countQuery: true));
        blocks.CopyOnWrite(second);
        Assert.Equal(4, second.ComputedTokens); // the last token's block is computed again
        Assert.Single(second.BlockTable);
        Assert.True(blocks.TryAllocate(second, 8));
        Assert.NotEqual(first.BlockTable[1], second.BlockTable[1]);
        Assert.Equal(first.BlockTable[0], second.BlockTable[0]);
    }

    [Fact]
    public void Cached_free_blocks_are_evicted_least_recently_freed_first()
    {
        var blocks = new BlockManager(4, 4);
        var a = Sequence(1, Tokens(4, 0));
        var b = Sequence(2, Tokens(4, 10));
        foreach (var s in new[] { a, b })
        {
            blocks.AllocateCachedPrefix(s, countQuery: true);
            Compute(blocks, s);
        }

        blocks.Free(a);
        blocks.Free(b);
        // Two never-cached blocks are used first; the third allocation evicts a's block (freed before b's).
        var filler = Sequence(3, Tokens(12, 40));
        Assert.True(blocks.TryAllocate(filler, 12));
        Assert.Equal(0, blocks.AllocateCachedPrefix(Sequence(4, Tokens(4, 0)), countQuery: false));
        Assert.Equal(4, blocks.AllocateCachedPrefix(Sequence(5, Tokens(4, 10)), countQuery: false));
    }

    [Fact]
    public void Allocation_takes_nothing_when_too_few_blocks_are_free()
    {
        var blocks = new BlockManager(2, 4);
        var s = Sequence(1, Tokens(12, 0));
        Assert.False(blocks.TryAllocate(s, 12));
        Assert.Empty(s.BlockTable);
        Assert.Equal(2, blocks.FreeBlocks);
    }
}
