namespace AspireAi.Inference.Backends.Cuda;

/// <summary>
/// Where each array of a <see cref="ForwardBatch"/> sits in the single int buffer that one host-to-device copy uploads
/// per step: token ids, positions, sequence indices, slots, logit token indices, the block tables
/// [sequences × maxBlocks], then attention's split of the tokens (<see cref="CudaLaunchGeometry.BuildQueryTiles"/>): the
/// query tiles of attention_prefill [tiles × (first token, count)] and the tokens left to attention_partition. A batch
/// without tiles (every decode batch) stores neither list: attention_partition then takes all tokens, as before the
/// prefill kernel existed. Offsets are in ints.
/// </summary>
/// <param name="RestTokenCount">Tokens in the list at <paramref name="RestTokens"/> (0 where there are no tiles).</param>
/// <param name="RestMaxContext">The longest context among the tokens attention_partition takes (all of them where there are no tiles).</param>
/// <param name="DecodeOnly">
/// Every token is its sequence's only one in the step (the steps the engine's CUDA graphs record): the KV cache then holds
/// only earlier steps' keys and values below each token's position.
/// </param>
public readonly record struct BatchMetadata(int TokenIds, int Positions, int Sequences, int Slots, int LogitIndices, int BlockTables,
    int QueryTiles, int QueryTileCount, int RestTokens, int RestTokenCount, int RestMaxContext, int Length, bool DecodeOnly)
{
    public static BatchMetadata For(ForwardBatch batch)
    {
        var t = batch.TokenCount;
        var blockTables = 4 * t + batch.LogitCount;
        var queryTiles = blockTables + batch.SequenceCount * batch.MaxBlocksPerSequence;
        var (tiles, rest, restContext) = CudaLaunchGeometry.CountQueryTiles(batch.Positions, batch.SequenceIndices);
        if (tiles == 0)
        {
            (rest, restContext) = (0, batch.MaxContextLength);
        }

        var restTokens = queryTiles + 2 * tiles;
        return new BatchMetadata(0, t, 2 * t, 3 * t, 4 * t, blockTables, queryTiles, tiles, restTokens, rest, restContext, restTokens + rest,
            OneTokenEach(batch));
    }

    private static bool OneTokenEach(ForwardBatch batch)
    {
        if (batch.TokenCount != batch.SequenceCount)
        {
            return false;
        }

        // As many tokens as sequences: one each unless some sequence index repeats.
        Span<bool> seen = batch.SequenceCount <= 1024 ? stackalloc bool[batch.SequenceCount] : new bool[batch.SequenceCount];
        foreach (var sequence in batch.SequenceIndices)
        {
            if (seen[sequence])
            {
                return false;
            }

            seen[sequence] = true;
        }

        return true;
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
        if (QueryTileCount > 0)
        {
            CudaLaunchGeometry.BuildQueryTiles(batch.Positions, batch.SequenceIndices,
                destination.Slice(QueryTiles, 2 * QueryTileCount), destination.Slice(RestTokens, RestTokenCount));
        }
    }
}
