using Microsoft.Extensions.VectorData;

namespace AspireAi.Retrieval.VectorStores;

/// <summary>
/// One tenant's collection of chunks in a vector store, behind <c>Microsoft.Extensions.VectorData</c>'s collection
/// abstraction (dense search, hybrid search) plus the two operations retrieval needs beyond it: keyword-only search and
/// deleting every chunk of a document.
/// </summary>
public abstract class ChunkCollection : VectorStoreCollection<Guid, ChunkRecord>, IKeywordHybridSearchable<ChunkRecord>
{
    /// <summary>Reciprocal rank fusion's k: 60, the value of Cormack et al. (2009), used by Qdrant and Elasticsearch too.</summary>
    public const int RrfK = 60;

    /// <summary>Chunks that match the words of <paramref name="query"/>, best first (BM25-like scores).</summary>
    public abstract IAsyncEnumerable<VectorSearchResult<ChunkRecord>> KeywordSearchAsync(
        string query, int top, ChunkFilter filter, CancellationToken cancellationToken = default);

    /// <summary>Deletes every chunk of <paramref name="documentId"/> except those of <paramref name="keepVersion"/>.</summary>
    public abstract Task DeleteDocumentAsync(string documentId, string? keepVersion, CancellationToken cancellationToken = default);

    public abstract IAsyncEnumerable<VectorSearchResult<ChunkRecord>> HybridSearchAsync<TInput>(
        TInput searchValue, ICollection<string> keywords, int top, HybridSearchOptions<ChunkRecord>? options = null,
        CancellationToken cancellationToken = default) where TInput : notnull;

    /// <summary>The vector of a search input: <c>ReadOnlyMemory&lt;float&gt;</c>, <c>float[]</c> or an <c>Embedding&lt;float&gt;</c>.</summary>
    protected static ReadOnlyMemory<float> VectorOf<TInput>(TInput searchValue) => searchValue switch
    {
        ReadOnlyMemory<float> memory => memory,
        float[] array => array,
        Microsoft.Extensions.AI.Embedding<float> embedding => embedding.Vector,
        _ => throw new NotSupportedException($"Search input of type {typeof(TInput).Name} is not supported: give the query's embedding."),
    };

    /// <summary>Fuses ranked lists by reciprocal rank: score = Σ 1/(k + rank), ranks from 1.</summary>
    public static List<VectorSearchResult<ChunkRecord>> ReciprocalRankFusion(int top, params IReadOnlyList<ChunkRecord>[] rankings)
    {
        var fused = new Dictionary<Guid, (ChunkRecord Record, double Score)>();
        foreach (var ranking in rankings)
        {
            for (var rank = 0; rank < ranking.Count; rank++)
            {
                var record = ranking[rank];
                var score = 1.0 / (RrfK + rank + 1);
                fused[record.Id] = fused.TryGetValue(record.Id, out var seen) ? (seen.Record, seen.Score + score) : (record, score);
            }
        }

        return [.. fused.Values.OrderByDescending(x => x.Score).Take(top).Select(x => new VectorSearchResult<ChunkRecord>(x.Record, x.Score))];
    }
}
