using System.Collections.Concurrent;
using System.Linq.Expressions;
using System.Runtime.CompilerServices;
using Grpc.Core;
using Microsoft.Extensions.VectorData;
using global::Qdrant.Client;
using global::Qdrant.Client.Grpc;
using static global::Qdrant.Client.Grpc.Conditions;

namespace AspireAi.Retrieval.VectorStores.Qdrant;

/// <summary>
/// One tenant's collection inside a shared Qdrant collection: every point carries <c>tenant</c> and <c>collection</c>
/// payload fields, every query and delete filters on both. Points have a named dense vector (cosine, HNSW) and a named
/// sparse vector (BM25 weights, IDF applied by Qdrant); hybrid search is Qdrant's own prefetch + RRF fusion.
/// </summary>
internal sealed class QdrantChunkCollection(
    QdrantClient client, string physicalName, string tenant, string collection, ConcurrentDictionary<string, Task> created) : ChunkCollection
{
    private const string Dense = "dense";
    private const string Sparse = "sparse";

    public override string Name => $"{tenant}/{collection}";

    public override async Task<bool> CollectionExistsAsync(CancellationToken cancellationToken = default)
    {
        if (!await client.CollectionExistsAsync(physicalName, cancellationToken))
        {
            return false;
        }

        return await client.CountAsync(physicalName, Scope(), exact: false, cancellationToken: cancellationToken) > 0;
    }

    /// <summary>The shared Qdrant collection is created with the first vector, whose length it needs.</summary>
    public override Task EnsureCollectionExistsAsync(CancellationToken cancellationToken = default) => Task.CompletedTask;

    public override async Task EnsureCollectionDeletedAsync(CancellationToken cancellationToken = default)
    {
        if (await client.CollectionExistsAsync(physicalName, cancellationToken))
        {
            await client.DeleteAsync(physicalName, Scope(), wait: true, cancellationToken: cancellationToken);
        }
    }

    public override async Task<ChunkRecord?> GetAsync(Guid key, RecordRetrievalOptions? options = null, CancellationToken cancellationToken = default)
    {
        var points = await client.RetrieveAsync(physicalName, key, withPayload: true, withVectors: options?.IncludeVectors ?? false,
            cancellationToken: cancellationToken);
        return points.Where(p => Owned(p.Payload)).Select(p => Record(p.Id, p.Payload, p.Vectors)).FirstOrDefault();
    }

    public override async IAsyncEnumerable<ChunkRecord> GetAsync(Expression<Func<ChunkRecord, bool>> filter, int top,
        FilteredRecordRetrievalOptions<ChunkRecord>? options = null, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var response = await client.ScrollAsync(physicalName, Scope(ChunkFilter.FromExpression(filter)), (uint)(top + (options?.Skip ?? 0)),
            payloadSelector: true, vectorsSelector: options?.IncludeVectors ?? false, cancellationToken: cancellationToken);
        foreach (var point in response.Result.Skip(options?.Skip ?? 0))
        {
            yield return Record(point.Id, point.Payload, point.Vectors);
        }
    }

    public override Task DeleteAsync(Guid key, CancellationToken cancellationToken = default) =>
        client.DeleteAsync(physicalName, new Filter { Must = { HasId(key) } }.Also(Scope()), wait: true, cancellationToken: cancellationToken);

    public override async Task DeleteDocumentAsync(string documentId, string? keepVersion, CancellationToken cancellationToken = default)
    {
        if (!await client.CollectionExistsAsync(physicalName, cancellationToken))
        {
            return;
        }

        var filter = Scope(new ChunkFilter([new FilterClause(FilterClause.DocumentIdField, [documentId])]));
        if (keepVersion is not null)
        {
            filter.MustNot.Add(MatchKeyword("document_version", keepVersion));
        }

        await client.DeleteAsync(physicalName, filter, wait: true, cancellationToken: cancellationToken);
    }

    public override Task UpsertAsync(ChunkRecord record, CancellationToken cancellationToken = default) => UpsertAsync([record], cancellationToken);

    /// <summary>Upserts with <c>wait</c>: the points are searchable once this returns.</summary>
    public override async Task UpsertAsync(IEnumerable<ChunkRecord> records, CancellationToken cancellationToken = default)
    {
        var batch = records.ToList();
        if (batch.Count == 0)
        {
            return;
        }

        var dimensions = batch[0].Embedding?.Length ?? throw new ArgumentException($"Chunk {batch[0].Id} has no embedding.");
        await created.GetOrAdd(physicalName, _ => CreateAsync(dimensions));
        var points = batch.Select(record =>
        {
            var (values, indices) = SparseTextEncoder.Document(record.Text);
            var meta = new Struct();
            foreach (var (key, value) in record.Metadata)
            {
                meta.Fields[key] = value;
            }

            return new PointStruct
            {
                Id = record.Id,
                Vectors = new Dictionary<string, Vector>
                {
                    [Dense] = (record.Embedding ?? throw new ArgumentException($"Chunk {record.Id} has no embedding.")).ToArray(),
                    [Sparse] = (values, indices),
                },
                Payload =
                {
                    ["tenant"] = tenant,
                    ["collection"] = collection,
                    ["document_id"] = record.DocumentId,
                    ["document_version"] = record.DocumentVersion,
                    ["chunk_index"] = record.ChunkIndex,
                    ["text"] = record.Text,
                    ["metadata_json"] = record.MetadataJson,
                    ["meta"] = new Value { StructValue = meta },
                },
            };
        }).ToList();
        // 256 points (≈0.5 MB at 384 dimensions) per call keeps each gRPC message far below Qdrant's size limit; a document's
        // chunks may thus land in several calls, which is safe because they stay invisible until the document row names them.
        foreach (var slice in points.Chunk(256))
        {
            await client.UpsertAsync(physicalName, slice, wait: true, cancellationToken: cancellationToken);
        }
    }

    public override async IAsyncEnumerable<VectorSearchResult<ChunkRecord>> SearchAsync<TInput>(TInput searchValue, int top,
        VectorSearchOptions<ChunkRecord>? options = null, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var query = new Query { Nearest = new VectorInput { Dense = new DenseVector { Data = { VectorOf(searchValue).ToArray() } } } };
        foreach (var result in await QueryAsync(query, [], Dense, ChunkFilter.FromExpression(options?.Filter), top, options?.Skip ?? 0,
                     options?.IncludeVectors ?? false, cancellationToken))
        {
            yield return result;
        }
    }

    public override async IAsyncEnumerable<VectorSearchResult<ChunkRecord>> KeywordSearchAsync(string query, int top, ChunkFilter filter,
        [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        foreach (var result in await QueryAsync(SparseQuery(query), [], Sparse, filter, top, 0, false, cancellationToken))
        {
            yield return result;
        }
    }

    public override async IAsyncEnumerable<VectorSearchResult<ChunkRecord>> HybridSearchAsync<TInput>(TInput searchValue,
        ICollection<string> keywords, int top, HybridSearchOptions<ChunkRecord>? options = null,
        [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var filter = Scope(ChunkFilter.FromExpression(options?.Filter));
        var depth = (ulong)Math.Max(3 * top, 30);
        PrefetchQuery[] prefetch =
        [
            new() { Query = new Query { Nearest = new VectorInput { Dense = new DenseVector { Data = { VectorOf(searchValue).ToArray() } } } }, Using = Dense, Filter = filter, Limit = depth },
            new() { Query = SparseQuery(string.Join(' ', keywords)), Using = Sparse, Filter = filter, Limit = depth },
        ];
        foreach (var result in await QueryAsync(new Query { Fusion = Fusion.Rrf }, prefetch, null, ChunkFilter.None, top, options?.Skip ?? 0,
                     options?.IncludeVectors ?? false, cancellationToken))
        {
            yield return result;
        }
    }

    public override object? GetService(Type serviceType, object? serviceKey = null) =>
        serviceType == typeof(VectorStoreCollectionMetadata)
            ? new VectorStoreCollectionMetadata { VectorStoreSystemName = "qdrant", VectorStoreName = physicalName, CollectionName = Name }
            : serviceType.IsInstanceOfType(this) ? this : serviceType == typeof(QdrantClient) ? client : null;

    private async Task<List<VectorSearchResult<ChunkRecord>>> QueryAsync(Query query, IReadOnlyList<PrefetchQuery> prefetch, string? usingVector,
        ChunkFilter filter, int top, int skip, bool includeVectors, CancellationToken cancellationToken)
    {
        try
        {
            var points = await client.QueryAsync(physicalName, query, prefetch, usingVector, Scope(filter), limit: (ulong)top, offset: (ulong)skip,
                payloadSelector: true, vectorsSelector: includeVectors, cancellationToken: cancellationToken);
            return [.. points.Where(p => Owned(p.Payload)).Select(p => new VectorSearchResult<ChunkRecord>(Record(p.Id, p.Payload, p.Vectors), p.Score))];
        }
        catch (RpcException ex) when (ex.StatusCode == StatusCode.NotFound)
        {
            return []; // nothing was ever written with this embedding model
        }
    }

    private static Query SparseQuery(string text)
    {
        var (values, indices) = SparseTextEncoder.Query(text);
        return new Query { Nearest = new VectorInput { Sparse = new SparseVector { Values = { values }, Indices = { indices } } } };
    }

    /// <summary>The tenant-and-collection scope every query and delete carries, plus the caller's filter.</summary>
    private Filter Scope(ChunkFilter? filter = null)
    {
        var scope = new Filter { Must = { MatchKeyword("tenant", tenant), MatchKeyword("collection", collection) } };
        foreach (var clause in filter?.Clauses ?? [])
        {
            var field = clause.Field == FilterClause.DocumentIdField ? "document_id" : $"meta.{clause.Field}";
            scope.Must.Add(clause.Values.Count == 1 ? MatchKeyword(field, clause.Values[0]) : Match(field, clause.Values.ToList()));
        }

        return scope;
    }

    /// <summary>A second check of what the filter already guarantees: a point of another tenant never becomes a result.</summary>
    private bool Owned(IDictionary<string, Value> payload) =>
        payload.TryGetValue("tenant", out var t) && t.StringValue == tenant
        && payload.TryGetValue("collection", out var c) && c.StringValue == collection;

    private async Task CreateAsync(int dimensions)
    {
        if (await client.CollectionExistsAsync(physicalName))
        {
            return;
        }

        try
        {
            await client.CreateCollectionAsync(physicalName,
                new VectorParamsMap { Map = { [Dense] = new VectorParams { Size = (ulong)dimensions, Distance = Distance.Cosine } } },
                // payload_m builds per-tenant links so that filtered searches stay on the graph; m = 0 skips the global graph,
                // since every search is scoped to one tenant (Qdrant's multitenancy guide).
                hnswConfig: new HnswConfigDiff { M = 0, PayloadM = 16, EfConstruct = 100 },
                sparseVectorsConfig: new SparseVectorConfig { Map = { [Sparse] = new SparseVectorParams { Modifier = Modifier.Idf } } });
        }
        catch (RpcException ex) when (ex.StatusCode == StatusCode.AlreadyExists)
        {
            return; // another replica won the race
        }

        await client.CreatePayloadIndexAsync(physicalName, "tenant", PayloadSchemaType.Keyword,
            new PayloadIndexParams { KeywordIndexParams = new KeywordIndexParams { IsTenant = true } });
        await client.CreatePayloadIndexAsync(physicalName, "collection", PayloadSchemaType.Keyword);
        await client.CreatePayloadIndexAsync(physicalName, "document_id", PayloadSchemaType.Keyword);
    }

    private static ChunkRecord Record(PointId id, IDictionary<string, Value> payload, VectorsOutput? vectors) => new()
    {
        Id = Guid.Parse(id.Uuid),
        DocumentId = payload["document_id"].StringValue,
        DocumentVersion = payload["document_version"].StringValue,
        ChunkIndex = (int)payload["chunk_index"].IntegerValue,
        Text = payload["text"].StringValue,
        MetadataJson = payload["metadata_json"].StringValue,
        Embedding = vectors?.Vectors?.Vectors.TryGetValue(Dense, out var dense) == true ? dense.Dense?.Data.ToArray() : null,
    };
}

internal static class QdrantFilterExtensions
{
    /// <summary>Adds the conditions of <paramref name="other"/> to <paramref name="filter"/>'s must list.</summary>
    public static Filter Also(this Filter filter, Filter other)
    {
        filter.Must.AddRange(other.Must);
        return filter;
    }
}
