namespace AspireAi.Inference.Backends;

/// <summary>
/// One engine step's tokens, flat: for each token its id, position, sequence (an index into this batch's sequences) and
/// KV-cache slot; for each sequence its block table; and which tokens need logits. Prefill chunks and decode tokens of many
/// sequences mix freely. Arrays are allocated once at the capacity given and reused step after step (no allocation per token).
/// </summary>
public sealed class ForwardBatch
{
    private readonly int[] _tokenIds;
    private readonly int[] _positions;
    private readonly int[] _sequenceIndices;
    private readonly int[] _slots;
    private readonly int[] _logitTokenIndices;
    private readonly int[] _blockTables;

    public ForwardBatch(int maxTokens, int maxSequences, int maxBlocksPerSequence)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxTokens);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxSequences);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxBlocksPerSequence);
        MaxTokens = maxTokens;
        MaxSequences = maxSequences;
        MaxBlocksPerSequence = maxBlocksPerSequence;
        _tokenIds = new int[maxTokens];
        _positions = new int[maxTokens];
        _sequenceIndices = new int[maxTokens];
        _slots = new int[maxTokens];
        _logitTokenIndices = new int[maxTokens];
        _blockTables = new int[maxSequences * maxBlocksPerSequence];
    }

    public int MaxTokens { get; }

    public int MaxSequences { get; }

    public int MaxBlocksPerSequence { get; }

    public int TokenCount { get; private set; }

    public int SequenceCount { get; private set; }

    public int LogitCount { get; private set; }

    /// <summary>The largest position of any token plus one: the longest context a token of this batch attends over.</summary>
    public int MaxContextLength { get; private set; }

    public ReadOnlySpan<int> TokenIds => _tokenIds.AsSpan(0, TokenCount);

    public ReadOnlySpan<int> Positions => _positions.AsSpan(0, TokenCount);

    public ReadOnlySpan<int> SequenceIndices => _sequenceIndices.AsSpan(0, TokenCount);

    /// <summary>Slot of each token's key/value: <c>block · blockSize + offset</c> (see <see cref="KvCacheShape"/>).</summary>
    public ReadOnlySpan<int> Slots => _slots.AsSpan(0, TokenCount);

    /// <summary>Tokens (indices into this batch) whose logits are computed, in output-row order.</summary>
    public ReadOnlySpan<int> LogitTokenIndices => _logitTokenIndices.AsSpan(0, LogitCount);

    /// <summary>Block tables, row-major [sequence × <see cref="MaxBlocksPerSequence"/>]; unused entries are undefined.</summary>
    public ReadOnlySpan<int> BlockTables => _blockTables.AsSpan(0, SequenceCount * MaxBlocksPerSequence);

    public ReadOnlySpan<int> BlockTable(int sequence) => _blockTables.AsSpan(sequence * MaxBlocksPerSequence, MaxBlocksPerSequence);

    public void Clear()
    {
        TokenCount = 0;
        SequenceCount = 0;
        LogitCount = 0;
        MaxContextLength = 0;
    }

    /// <summary>
    /// Raises <see cref="MaxContextLength"/> to at least <paramref name="length"/>: attention then launches as for that
    /// context, the shape a recorded step (<see cref="Models.IStepGraph"/>) was recorded at. Tokens attend over their own
    /// contexts either way.
    /// </summary>
    public void RaiseContextBound(int length) => MaxContextLength = Math.Max(MaxContextLength, length);

    /// <summary>Adds a sequence with its block table (which must already cover every position its tokens use) and returns its index.</summary>
    public int AddSequence(ReadOnlySpan<int> blockTable)
    {
        if (SequenceCount == MaxSequences)
        {
            throw new InvalidOperationException($"The batch holds at most {MaxSequences} sequences.");
        }

        if (blockTable.Length > MaxBlocksPerSequence)
        {
            throw new ArgumentException($"A block table of {blockTable.Length} blocks exceeds the batch limit of {MaxBlocksPerSequence}.", nameof(blockTable));
        }

        blockTable.CopyTo(_blockTables.AsSpan(SequenceCount * MaxBlocksPerSequence));
        return SequenceCount++;
    }

    /// <summary>Adds a token of sequence <paramref name="sequence"/> at <paramref name="position"/>, stored at <paramref name="slot"/>.</summary>
    public void AddToken(int tokenId, int position, int sequence, int slot, bool needsLogits)
    {
        if (TokenCount == MaxTokens)
        {
            throw new InvalidOperationException($"The batch holds at most {MaxTokens} tokens.");
        }

        if ((uint)sequence >= (uint)SequenceCount)
        {
            throw new ArgumentOutOfRangeException(nameof(sequence), sequence, "Add the sequence before its tokens.");
        }

        ArgumentOutOfRangeException.ThrowIfNegative(position);
        ArgumentOutOfRangeException.ThrowIfNegative(slot);
        var t = TokenCount++;
        _tokenIds[t] = tokenId;
        _positions[t] = position;
        _sequenceIndices[t] = sequence;
        _slots[t] = slot;
        if (needsLogits)
        {
            _logitTokenIndices[LogitCount++] = t;
        }

        MaxContextLength = Math.Max(MaxContextLength, position + 1);
    }
}
