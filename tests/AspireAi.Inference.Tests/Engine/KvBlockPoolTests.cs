using AspireAi.Inference.Engine;

namespace AspireAi.Inference.Tests.Engine;

public sealed class KvBlockPoolTests
{
    [Fact]
    public void A_sequence_spans_blocks_and_maps_positions_to_slots_through_its_table()
    {
        var pool = new KvBlockPool(blockCount: 4, blockSize: 4);
        var other = new SequenceBlocks(pool);
        Assert.True(other.TryReserve(3)); // takes block 0
        var sequence = new SequenceBlocks(pool);
        Assert.True(sequence.TryReserve(6)); // blocks 1 and 2
        Assert.Equal([1, 2], sequence.Blocks);
        Assert.Equal(1 * 4 + 3, sequence.Slot(3));
        Assert.Equal(2 * 4 + 1, sequence.Slot(5));
        Assert.False(sequence.TryReserve(13)); // would need 4 blocks, 1 free: nothing taken
        Assert.Equal(1, pool.FreeCount);
        sequence.Release();
        other.Release();
        Assert.Equal(4, pool.FreeCount);
    }
}
