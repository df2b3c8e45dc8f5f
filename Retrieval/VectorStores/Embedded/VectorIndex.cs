using System.Numerics.Tensors;

namespace AspireAi.Retrieval.VectorStores.Embedded;

/// <summary>
/// The in-memory index of one collection of the embedded store: unit vectors in one contiguous array, searched exactly
/// (a SIMD dot product per row) until the collection reaches <see cref="RetrievalOptions.AnnThreshold"/> chunks, then
/// through an HNSW graph built in the background (exact search serves until it is ready); and their words, for BM25.
/// </summary>
/// <remarks>
/// Slots are append-only: a deleted chunk leaves a tombstone, so that readers and the background graph build never see a
/// slot change under them. Filtered searches always scan exactly: the filter prunes rows before any distance is computed,
/// and a graph walk under a selective filter could return fewer than k results.
/// </remarks>
internal sealed class VectorIndex(int dimensions, RetrievalOptions options)
{
    private readonly ReaderWriterLockSlim _lock = new();
    private readonly List<Entry> _entries = [];
    private readonly Dictionary<Guid, int> _slots = [];
    private readonly KeywordIndex _keywords = new();
    private float[] _vectors = new float[dimensions * 64];
    private HnswGraph? _graph;
    private Task? _graphBuild;

    public int Dimensions { get; } = dimensions;

    /// <summary>Live (not deleted) chunks.</summary>
    public int Count
    {
        get
        {
            _lock.EnterReadLock();
            try
            {
                return _slots.Count;
            }
            finally
            {
                _lock.ExitReadLock();
            }
        }
    }

    /// <summary>Whether searches without a filter go through the HNSW graph.</summary>
    public bool HasGraph => Volatile.Read(ref _graph) is not null;

    /// <summary>Completes when a graph build started by <see cref="Add"/> has finished (or at once when none runs).</summary>
    public Task GraphBuild => Volatile.Read(ref _graphBuild) ?? Task.CompletedTask;

    public void Add(IEnumerable<IndexedChunk> chunks)
    {
        _lock.EnterWriteLock();
        try
        {
            foreach (var (id, documentId, metadata, vector, terms) in chunks)
            {
                if (vector.Length != Dimensions)
                {
                    throw new ArgumentException($"Chunk {id} has a {vector.Length}-dimensional vector; this collection's are {Dimensions}-dimensional.");
                }

                if (_slots.ContainsKey(id))
                {
                    continue; // ids hash the content: the same id is the same chunk
                }

                var slot = _entries.Count;
                if ((slot + 1) * Dimensions > _vectors.Length)
                {
                    Array.Resize(ref _vectors, _vectors.Length * 2);
                }

                vector.Span.CopyTo(_vectors.AsSpan(slot * Dimensions, Dimensions));
                _entries.Add(new Entry(id, documentId, metadata));
                _keywords.Add(terms);
                _slots[id] = slot;
                _graph?.Add();
            }

            if (_graph is null && _graphBuild is null && _slots.Count >= options.AnnThreshold)
            {
                StartGraphBuild();
            }
        }
        finally
        {
            _lock.ExitWriteLock();
        }
    }

    public void Remove(IEnumerable<Guid> ids)
    {
        _lock.EnterWriteLock();
        try
        {
            foreach (var id in ids)
            {
                if (_slots.Remove(id, out var slot))
                {
                    _entries[slot] = _entries[slot] with { Deleted = true };
                }
            }
        }
        finally
        {
            _lock.ExitWriteLock();
        }
    }

    /// <summary>
    /// The <paramref name="k"/> chunks most similar to <paramref name="query"/> (a unit vector), best first; through the graph
    /// when there is one, no filter and not <paramref name="exact"/>, exploring <paramref name="efSearch"/> candidates
    /// (default <see cref="RetrievalOptions.HnswEfSearch"/>).
    /// </summary>
    public List<(Guid Id, float Score)> Search(ReadOnlySpan<float> query, int k, ChunkFilter filter, bool exact = false, int? efSearch = null)
    {
        if (query.Length != Dimensions)
        {
            throw new ArgumentException($"The query vector has {query.Length} dimensions; this collection's have {Dimensions}.");
        }

        _lock.EnterReadLock();
        try
        {
            if (!exact && filter.IsEmpty && _graph is { } graph)
            {
                var found = graph.Search(query, k, Math.Max(efSearch ?? options.HnswEfSearch, k), slot => !_entries[slot].Deleted);
                return [.. found.Select(f => (_entries[f.Node].Id, f.Similarity))];
            }

            return ExactSearch(query, k, filter);
        }
        finally
        {
            _lock.ExitReadLock();
        }
    }

    /// <summary>The <paramref name="k"/> best chunks for <paramref name="terms"/> (lexemes) by BM25, within the filter.</summary>
    public List<(Guid Id, float Score)> KeywordSearch(IReadOnlyCollection<string> terms, int k, ChunkFilter filter)
    {
        _lock.EnterReadLock();
        try
        {
            var found = _keywords.Search(terms, k, slot => !_entries[slot].Deleted
                && (filter.IsEmpty || filter.Matches(_entries[slot].DocumentId, _entries[slot].Metadata)));
            return [.. found.Select(f => (_entries[f.Slot].Id, f.Score))];
        }
        finally
        {
            _lock.ExitReadLock();
        }
    }

    private List<(Guid Id, float Score)> ExactSearch(ReadOnlySpan<float> query, int k, ChunkFilter filter)
    {
        var best = new PriorityQueue<int, float>(k + 1); // least similar on top
        var vectors = _vectors.AsSpan();
        for (var slot = 0; slot < _entries.Count; slot++)
        {
            var entry = _entries[slot];
            if (entry.Deleted || (!filter.IsEmpty && !filter.Matches(entry.DocumentId, entry.Metadata)))
            {
                continue;
            }

            var score = TensorPrimitives.Dot(query, vectors.Slice(slot * Dimensions, Dimensions));
            if (best.Count < k)
            {
                best.Enqueue(slot, score);
            }
            else if (best.TryPeek(out _, out var worst) && score > worst)
            {
                best.DequeueEnqueue(slot, score);
            }
        }

        var results = new List<(Guid, float)>(best.Count);
        while (best.TryDequeue(out var slot, out var score))
        {
            results.Add((_entries[slot].Id, score));
        }

        results.Reverse();
        return results;
    }

    /// <summary>Builds the graph over the slots present now without holding the lock, then catches up on later ones under it.</summary>
    private void StartGraphBuild()
    {
        var count = _entries.Count;
        _graphBuild = Task.Run(() =>
        {
            // Slots are append-only and a resize copies before it swaps arrays, so whichever array this reads holds
            // every slot below `count` unchanged: no lock is needed for them.
            var graph = new HnswGraph(slot => Volatile.Read(ref _vectors).AsMemory(slot * Dimensions, Dimensions),
                options.HnswM, options.HnswEfConstruction);
            for (var slot = 0; slot < count; slot++)
            {
                graph.Add();
            }

            _lock.EnterWriteLock();
            try
            {
                while (graph.Count < _entries.Count)
                {
                    graph.Add();
                }

                Volatile.Write(ref _graph, graph);
            }
            finally
            {
                _lock.ExitWriteLock();
            }
        });
    }

    private sealed record Entry(Guid Id, string DocumentId, IReadOnlyDictionary<string, string> Metadata, bool Deleted = false);
}

/// <summary>A chunk as the in-memory index holds it: id, document, metadata for filters, vector, and lexeme counts for BM25.</summary>
internal sealed record IndexedChunk(
    Guid Id, string DocumentId, IReadOnlyDictionary<string, string> Metadata, ReadOnlyMemory<float> Vector, IReadOnlyDictionary<string, int> Terms);
