namespace AspireAi.Inference.Backends.Cuda;

/// <summary>
/// Where each array of a <see cref="ForwardBatch"/> sits in the single int buffer that one host-to-device copy uploads
/// per step: token ids, positions, sequence indices, slots, logit token indices, then the block tables
/// [sequences × maxBlocks]. Offsets are in ints.
/// </summary>
public readonly record struct BatchMetadata(int TokenIds, int Positions, int Sequences, int Slots, int LogitIndices, int BlockTables, int Length)
{
    public static BatchMetadata For(ForwardBatch batch)
    {
        var t = batch.TokenCount;
        return new BatchMetadata(0, t, 2 * t, 3 * t, 4 * t, 4 * t + batch.LogitCount,
            4 * t + batch.LogitCount + batch.SequenceCount * batch.MaxBlocksPerSequence);
    }

    /// <summary>Writes the batch's arrays at these offsets.</summary>
    public void Pack(ForwardBatch batch, Span<int> destination)
    {
        batch.TokenIds.CopyTo(destination[TokenIds..]);
        batch.Positions.CopyTo(destination[Positions..]);
        batch.SequenceIndices.CopyTo(destination[Sequences..]);
        batch.Slots.CopyTo(destination[Slots..]);
        batch.LogitTokenIndices.CopyTo(destination[LogitIndices..]);
        batch.BlockTables.CopyTo(destination[BlockTables..]);
    }
}
