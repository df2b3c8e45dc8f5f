using Npgsql;

namespace AspireAi.Retrieval.VectorStores.Embedded;

/// <summary>The embedded store: PostgreSQL rows plus in-memory indexes (local mode, no Qdrant).</summary>
internal sealed class EmbeddedChunkStore(NpgsqlDataSource db, EmbeddedIndexes indexes) : IChunkStore
{
    public string Name => "embedded";

    public ChunkCollection Collection(string tenant, string collection, string embeddingModel) =>
        new EmbeddedChunkCollection(db, indexes, tenant, collection);
}
