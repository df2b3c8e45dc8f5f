using AspireAi.Retrieval.Collections;
using AspireAi.Retrieval.VectorStores;
using AspireAi.Retrieval.VectorStores.Embedded;
using AspireAi.Retrieval.VectorStores.Qdrant;
using AspireAi.TestSupport;
using Microsoft.Extensions.Options;
using Npgsql;

namespace AspireAi.Retrieval.Tests;

/// <summary>The contract suite against the embedded store: PostgreSQL rows plus the in-memory index.</summary>
public sealed class EmbeddedChunkCollectionTests(PostgresServer postgres) : ChunkCollectionContract, IAsyncLifetime
{
    private NpgsqlDataSource _db = null!;
    private EmbeddedChunkStore _store = null!;

    public async ValueTask InitializeAsync()
    {
        _db = NpgsqlDataSource.Create(await postgres.CreateDatabaseAsync("embedded_store"));
        foreach (var migration in RetrievalSchema.Migrations)
        {
            await using var command = _db.CreateCommand(migration.Sql);
            await command.ExecuteNonQueryAsync();
        }

        _store = new EmbeddedChunkStore(_db, new EmbeddedIndexes(Options.Create(new RetrievalOptions())));
    }

    public async ValueTask DisposeAsync() => await _db.DisposeAsync();

    protected override Task<ChunkCollection> CollectionAsync(string tenant, string collection) =>
        Task.FromResult(_store.Collection(tenant, collection, "test-model"));
}

/// <summary>
/// The contract suite against Qdrant over gRPC. No Qdrant binary exists on these machines, so it runs only where
/// <c>QDRANT_ENDPOINT</c> (e.g. <c>http://localhost:6334</c>, optional <c>QDRANT_API_KEY</c>) names a server, and is
/// reported as skipped otherwise.
/// </summary>
public sealed class QdrantChunkCollectionTests : ChunkCollectionContract
{
    private static readonly string? Endpoint = Environment.GetEnvironmentVariable("QDRANT_ENDPOINT");
    private readonly string _model = "test-" + Guid.NewGuid().ToString("N")[..8];

    protected override Task<ChunkCollection> CollectionAsync(string tenant, string collection)
    {
        if (string.IsNullOrEmpty(Endpoint))
        {
            Assert.Skip("QDRANT_ENDPOINT is not set: no Qdrant server to test against (none is installed here; set it to a Qdrant gRPC endpoint to run these).");
        }

        var key = Environment.GetEnvironmentVariable("QDRANT_API_KEY");
        var store = new QdrantChunkStore(QdrantChunkStore.Connect($"Endpoint={Endpoint};Key={key}"));
        return Task.FromResult(store.Collection(tenant, collection, _model));
    }
}
