using System.Diagnostics;
using Npgsql;

namespace AspireAi.Retrieval.VectorStores.Embedded;

/// <summary>
/// Rebuilds every in-memory index from PostgreSQL at start, before the service takes requests (registered after the
/// migrations, and hosted services start in order). HNSW graphs of large collections then build in the background.
/// </summary>
internal sealed class EmbeddedIndexLoader(NpgsqlDataSource db, EmbeddedIndexes indexes, ILogger<EmbeddedIndexLoader> logger) : IHostedService
{
    private const int Batch = 1024;

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        var clock = Stopwatch.StartNew();
        await using var command = db.CreateCommand(
            "SELECT tenant, collection, id, document_id, metadata::text, embedding, tsv FROM chunks ORDER BY tenant, collection, seq");
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        var loaded = 0;
        var pending = new List<IndexedChunk>(Batch);
        (string Tenant, string Collection)? current = null;
        var currentDimensions = 0;
        while (await reader.ReadAsync(cancellationToken))
        {
            var key = (reader.GetString(0), reader.GetString(1));
            if (current != key)
            {
                Flush();
                current = key;
            }

            var vector = reader.GetFieldValue<float[]>(5);
            currentDimensions = vector.Length;
            pending.Add(new IndexedChunk(reader.GetGuid(2), reader.GetString(3), ChunkRecord.ParseMetadata(reader.GetString(4)), vector,
                EmbeddedChunkCollection.Terms(reader.GetFieldValue<NpgsqlTypes.NpgsqlTsVector>(6))));
            if (pending.Count == Batch)
            {
                Flush();
            }
        }

        Flush();
        logger.LogInformation("Embedded vector store: loaded {Chunks} chunks into {Collections} in-memory indexes in {Elapsed} ms",
            loaded, indexes.All.Count(), clock.ElapsedMilliseconds);

        void Flush()
        {
            if (pending.Count > 0 && current is { } at)
            {
                indexes.GetOrCreate(at.Tenant, at.Collection, currentDimensions).Add(pending);
                loaded += pending.Count;
                pending.Clear();
            }
        }
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
