using System.Collections.Concurrent;
using global::Qdrant.Client;

namespace AspireAi.Retrieval.VectorStores.Qdrant;

/// <summary>
/// Qdrant as the vector store (containers mode, cloud). One Qdrant collection per embedding model holds every tenant's
/// chunks, partitioned by a tenant payload index (<c>is_tenant</c>, Qdrant's recommended multitenancy): thousands of small
/// per-tenant collections would each carry their own segments and HNSW graph.
/// </summary>
internal sealed class QdrantChunkStore(QdrantClient client) : IChunkStore
{
    private readonly ConcurrentDictionary<string, Task> _created = new();

    public string Name => "qdrant";

    /// <summary>Parses <c>Endpoint=http://host:6334;Key=…</c>, the connection string the AppHost passes.</summary>
    public static QdrantClient Connect(string connectionString)
    {
        var parts = connectionString.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(p => p.Split('=', 2))
            .ToDictionary(p => p[0], p => p.Length > 1 ? p[1] : "", StringComparer.OrdinalIgnoreCase);
        if (!parts.TryGetValue("Endpoint", out var endpoint) || !Uri.TryCreate(endpoint, UriKind.Absolute, out var uri))
        {
            throw new InvalidOperationException(
                "ConnectionStrings:qdrant must look like 'Endpoint=http://host:6334;Key=…' (the gRPC endpoint); it has no valid Endpoint.");
        }

        return new QdrantClient(uri, parts.GetValueOrDefault("Key") is { Length: > 0 } key ? key : null);
    }

    public ChunkCollection Collection(string tenant, string collection, string embeddingModel) =>
        new QdrantChunkCollection(client, PhysicalName(embeddingModel), tenant, collection, _created);

    private static string PhysicalName(string embeddingModel) =>
        "aspireai-chunks-" + new string([.. embeddingModel.Select(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' ? char.ToLowerInvariant(c) : '_')]);
}
