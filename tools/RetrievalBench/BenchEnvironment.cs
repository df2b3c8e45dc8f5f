using System.ClientModel;
using AspireAi.Inference.Embeddings;
using AspireAi.Retrieval;
using AspireAi.Retrieval.Collections;
using AspireAi.Retrieval.VectorStores;
using AspireAi.Retrieval.VectorStores.Embedded;
using AspireAi.TestSupport;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.Options;
using Npgsql;
using OpenAI;

namespace AspireAi.RetrievalBench;

/// <summary>
/// What a benchmark runs against: a throwaway PostgreSQL (or <c>--db</c>), Inference's embeddings endpoint on loopback
/// (the same code and model as in production), the OpenAI generator Retrieval uses, and the embedded vector store.
/// </summary>
internal sealed class BenchEnvironment : IAsyncDisposable
{
    private readonly PostgresServer? _postgres;
    private readonly WebApplication _inference;

    private BenchEnvironment(PostgresServer? postgres, WebApplication inference, NpgsqlDataSource db, IEmbeddingGenerator<string, Embedding<float>> generator)
    {
        (_postgres, _inference, Db, Generator) = (postgres, inference, db, generator);
    }

    public NpgsqlDataSource Db { get; }

    public IEmbeddingGenerator<string, Embedding<float>> Generator { get; }

    public static async Task<BenchEnvironment> StartAsync(string? connectionString)
    {
        PostgresServer? postgres = null;
        if (connectionString is null)
        {
            postgres = new PostgresServer();
            await postgres.InitializeAsync();
            connectionString = await postgres.CreateDatabaseAsync("bench");
        }

        var db = NpgsqlDataSource.Create(connectionString);
        foreach (var migration in RetrievalSchema.Migrations)
        {
            await using var check = db.CreateCommand("SELECT to_regclass('chunks') IS NOT NULL");
            if ((bool)(await check.ExecuteScalarAsync())!)
            {
                break; // an existing benchmark database
            }

            await using var command = db.CreateCommand(migration.Sql);
            await command.ExecuteNonQueryAsync();
        }

        var port = FreePort();
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        builder.WebHost.UseUrls($"http://127.0.0.1:{port}");
        builder.AddEmbeddings();
        var inference = builder.Build();
        inference.MapEmbeddingEndpoints();
        await inference.StartAsync();

        var client = new OpenAIClient(new ApiKeyCredential("bench"), new OpenAIClientOptions { Endpoint = new Uri($"http://127.0.0.1:{port}/v1") });
        return new BenchEnvironment(postgres, inference, db, client.GetEmbeddingClient("all-MiniLM-L6-v2").AsIEmbeddingGenerator());
    }

    /// <summary>An embedded store over the benchmark database with its own in-memory indexes.</summary>
    public (EmbeddedChunkStore Store, EmbeddedIndexes Indexes) EmbeddedStore(int annThreshold)
    {
        var indexes = new EmbeddedIndexes(Options.Create(new RetrievalOptions { AnnThreshold = annThreshold }));
        return (new EmbeddedChunkStore(Db, indexes), indexes);
    }

    /// <summary>Embeds <paramref name="texts"/> 64 per request, as Retrieval does.</summary>
    public async Task<float[][]> EmbedAsync(IReadOnlyList<string> texts, Action<int>? progress = null)
    {
        var vectors = new float[texts.Count][];
        for (var start = 0; start < texts.Count; start += 64)
        {
            var batch = texts.Skip(start).Take(64).ToList();
            var embeddings = await Generator.GenerateAsync(batch);
            for (var i = 0; i < batch.Count; i++)
            {
                vectors[start + i] = embeddings[i].Vector.ToArray();
            }

            progress?.Invoke(start + batch.Count);
        }

        return vectors;
    }

    public static ChunkRecord Record(string collection, string documentId, int index, string text, float[] vector) => new()
    {
        Id = ChunkRecord.IdFor("bench", collection, documentId, "v1", index),
        DocumentId = documentId,
        DocumentVersion = "v1",
        ChunkIndex = index,
        Text = text,
        MetadataJson = "{}",
        Embedding = vector,
    };

    public async ValueTask DisposeAsync()
    {
        await Db.DisposeAsync();
        await _inference.DisposeAsync();
        if (_postgres is not null)
        {
            await _postgres.DisposeAsync();
        }
    }

    private static int FreePort()
    {
        using var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        listener.Start();
        return ((System.Net.IPEndPoint)listener.LocalEndpoint).Port;
    }
}
