using System.Net;
using System.Net.Http.Json;
using System.Text;
using AspireAi.TestSupport;

namespace AspireAi.Retrieval.Tests;

/// <summary>The Retrieval API end to end: real app, real PostgreSQL (embedded vector store), real embedding model.</summary>
public sealed class RetrievalApiTests(PostgresServer postgres, EmbeddingServer embeddings) : IAsyncLifetime
{
    private RetrievalHost _host = null!;
    private HttpClient _client = null!;
    private string _database = null!;

    public async ValueTask InitializeAsync()
    {
        _database = await postgres.CreateDatabaseAsync("retrieval_api");
        _host = new RetrievalHost(_database, embeddings.BaseAddress, new Dictionary<string, string?>
        {
            ["Retrieval:SyncChunkLimit"] = "8",
            ["Retrieval:MaxDocumentBytes"] = "200000",
        });
        _client = _host.ClientFor("tenant-a");
    }

    public async ValueTask DisposeAsync() => await _host.DisposeAsync();

    [Fact]
    public async Task Collections_are_created_idempotently_listed_and_deleted()
    {
        var created = await (await _client.CreateCollectionAsync("notes")).JsonAsync(HttpStatusCode.Created);
        Assert.Equal("all-MiniLM-L6-v2", created.GetProperty("embedding_model").GetString());
        await (await _client.CreateCollectionAsync("notes")).JsonAsync(HttpStatusCode.OK);

        var conflicting = await _client.PutAsJsonAsync("/v1/collections/notes", new { embedding_model = "other-model" });
        await conflicting.ErrorAsync(HttpStatusCode.Conflict, "embedding_model");
        await (await _client.PutAsync("/v1/collections/bad%20name", null)).ErrorAsync(HttpStatusCode.BadRequest, "name");

        var list = await (await _client.GetAsync("/v1/collections")).JsonAsync(HttpStatusCode.OK);
        Assert.Equal(["notes"], list.GetProperty("data").EnumerateArray().Select(c => c.GetProperty("name").GetString()));

        await (await _client.DeleteAsync("/v1/collections/notes")).JsonAsync(HttpStatusCode.OK);
        await (await _client.DeleteAsync("/v1/collections/notes")).ErrorAsync(HttpStatusCode.NotFound, "name");
        await (await _client.IngestAsync("notes", new { text = Corpus.Chess })).ErrorAsync(HttpStatusCode.NotFound, "name");
        var search = await _client.PostAsJsonAsync("/v1/collections/notes/search", new { query = "castling" });
        await search.ErrorAsync(HttpStatusCode.NotFound, "name");
    }

    [Fact]
    public async Task Dense_search_finds_a_paraphrase_keyword_search_an_exact_rare_word_and_hybrid_both()
    {
        await _client.CreateCollectionAsync("topics");
        foreach (var (id, text) in new[] { ("volcanoes", Corpus.Volcanoes), ("baking", Corpus.Baking), ("chess", Corpus.Chess), ("astronomy", Corpus.Astronomy) })
        {
            var ingested = await (await _client.IngestAsync("topics", new { id, text })).JsonAsync(HttpStatusCode.Created);
            Assert.Equal(id, ingested.GetProperty("document_id").GetString());
            Assert.Equal("ingested", ingested.GetProperty("status").GetString());
        }

        // No word in common with the baking text: only the meaning connects them.
        var dense = await _client.SearchAsync("topics", "why does my loaf get bigger before it goes into the stove", "dense", topK: 4);
        Assert.Equal("baking", dense[0].DocumentId());
        Assert.True(dense[0].GetProperty("score").GetDouble() > dense[1].GetProperty("score").GetDouble());

        var keyword = await _client.SearchAsync("topics", "Proxima", "keyword");
        Assert.Equal(["astronomy"], keyword.Select(r => r.DocumentId()));

        var hybrid = await _client.SearchAsync("topics", "Proxima", "hybrid", topK: 4);
        Assert.Equal("astronomy", hybrid[0].DocumentId());
        Assert.Equal(0, hybrid[0].GetProperty("chunk_index").GetInt32());
        Assert.Contains("Proxima Centauri", hybrid[0].Text());
    }

    [Fact]
    public async Task Reingesting_the_same_document_changes_nothing_and_a_new_version_replaces_the_old()
    {
        await _client.CreateCollectionAsync("versions");
        await (await _client.IngestAsync("versions", new { id = "doc", text = Corpus.Volcanoes })).JsonAsync(HttpStatusCode.Created);
        var again = await (await _client.IngestAsync("versions", new { id = "doc", text = Corpus.Volcanoes })).JsonAsync(HttpStatusCode.OK);
        Assert.Equal("unchanged", again.GetProperty("status").GetString());
        Assert.Equal(1, await ChunkRowsAsync("versions", "doc"));

        await (await _client.IngestAsync("versions", new { id = "doc", text = Corpus.Chess })).JsonAsync(HttpStatusCode.Created);
        var results = await _client.SearchAsync("versions", "magma chambers and lava eruptions", "hybrid", topK: 10);
        Assert.All(results, r => Assert.DoesNotContain("magma", r.Text()));
        Assert.Contains("castling", Assert.Single(results).Text());
        Assert.Equal(1, await ChunkRowsAsync("versions", "doc"));

        // Without an id the content names the document, so the same content is still recognised.
        var first = await (await _client.IngestAsync("versions", new { text = Corpus.Baking })).JsonAsync(HttpStatusCode.Created);
        var second = await (await _client.IngestAsync("versions", new { text = Corpus.Baking })).JsonAsync(HttpStatusCode.OK);
        Assert.Equal(first.GetProperty("document_id").GetString(), second.GetProperty("document_id").GetString());
    }

    [Fact]
    public async Task Deleting_a_document_removes_every_chunk()
    {
        await _client.CreateCollectionAsync("deletions");
        var longText = string.Join("\n\n", Enumerable.Range(0, 6).Select(i => $"Section {i}. " + Corpus.Volcanoes + " " + Corpus.Astronomy));
        var ingested = await (await _client.IngestAsync("deletions", new { id = "long", text = longText })).JsonAsync(HttpStatusCode.Created);
        Assert.True(ingested.GetProperty("chunks").GetInt32() > 1);
        await _client.IngestAsync("deletions", new { id = "other", text = Corpus.Chess });

        await (await _client.DeleteAsync("/v1/collections/deletions/documents/long")).JsonAsync(HttpStatusCode.OK);
        Assert.Equal(0, await ChunkRowsAsync("deletions", "long"));
        var results = await _client.SearchAsync("deletions", "volcano magma light-year", "hybrid", topK: 10);
        Assert.Equal(["other"], results.Select(r => r.DocumentId()).Distinct());
        await (await _client.DeleteAsync("/v1/collections/deletions/documents/long")).ErrorAsync(HttpStatusCode.NotFound, "id");
    }

    [Fact]
    public async Task Metadata_filters_restrict_every_mode()
    {
        await _client.CreateCollectionAsync("filtered");
        await _client.IngestAsync("filtered", new { id = "fr", text = Corpus.Baking, metadata = new { lang = "fr", year = 2023 } });
        await _client.IngestAsync("filtered", new { id = "en", text = Corpus.Baking + " Enjoy.", metadata = new { lang = "en", year = 2024 } });
        foreach (var mode in new[] { "dense", "keyword", "hybrid" })
        {
            var english = await _client.SearchAsync("filtered", "yeast dough bread", mode, 10, new { lang = "en" });
            Assert.Equal(["en"], english.Select(r => r.DocumentId()));
            Assert.Equal("en", english[0].GetProperty("metadata").GetProperty("lang").GetString());
            var years = await _client.SearchAsync("filtered", "yeast dough bread", mode, 10, new { year = new[] { 2023, 2024 } });
            Assert.Equal(["en", "fr"], years.Select(r => r.DocumentId()).Order());
            Assert.Empty(await _client.SearchAsync("filtered", "yeast dough bread", mode, 10, new { lang = "de" }));
        }

        var bad = await _client.PostAsJsonAsync("/v1/collections/filtered/search", new { query = "x", filter = new { lang = new { nested = 1 } } });
        await bad.ErrorAsync(HttpStatusCode.BadRequest, "filter");
    }

    [Fact]
    public async Task No_query_returns_another_tenants_chunks()
    {
        var other = _host.ClientFor("tenant-b");
        await _client.CreateCollectionAsync("shared-name");
        await other.CreateCollectionAsync("shared-name");
        await _client.IngestAsync("shared-name", new { id = "a-doc", text = Corpus.Chess });
        await other.IngestAsync("shared-name", new { id = "b-doc", text = Corpus.Chess + " Tenant B's copy." });
        await _client.CreateCollectionAsync("a-only");
        await _client.IngestAsync("a-only", new { id = "secret", text = Corpus.Astronomy });

        foreach (var mode in new[] { "dense", "keyword", "hybrid" })
        {
            Assert.Equal(["a-doc"], (await _client.SearchAsync("shared-name", "castling king rook", mode, 10)).Select(r => r.DocumentId()));
            Assert.Equal(["b-doc"], (await other.SearchAsync("shared-name", "castling king rook", mode, 10)).Select(r => r.DocumentId()));
        }

        var search = await other.PostAsJsonAsync("/v1/collections/a-only/search", new { query = "Proxima" });
        await search.ErrorAsync(HttpStatusCode.NotFound);
        await (await other.DeleteAsync("/v1/collections/a-only/documents/secret")).ErrorAsync(HttpStatusCode.NotFound);
        var list = await (await other.GetAsync("/v1/collections")).JsonAsync(HttpStatusCode.OK);
        Assert.Equal(["shared-name"], list.GetProperty("data").EnumerateArray().Select(c => c.GetProperty("name").GetString()));
    }

    [Fact]
    public async Task Bad_documents_get_clear_errors()
    {
        await _client.CreateCollectionAsync("errors");
        await (await _client.IngestAsync("errors", new { text = "" })).ErrorAsync(HttpStatusCode.BadRequest, "text");
        await (await _client.IngestAsync("errors", new { text = "   \n\n  " })).ErrorAsync(HttpStatusCode.BadRequest);
        await (await _client.IngestAsync("errors", new { id = "x" })).ErrorAsync(HttpStatusCode.BadRequest, "text");
        await (await _client.IngestAsync("errors", new { text = "a", url = "http://x" })).ErrorAsync(HttpStatusCode.BadRequest);
        await (await _client.IngestAsync("errors", new { text = new string('x', 200_001) })).ErrorAsync(HttpStatusCode.RequestEntityTooLarge);
        var png = new byte[] { 0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 13 };
        await (await _client.IngestAsync("errors", new { content_base64 = Convert.ToBase64String(png), content_type = "image/png" }))
            .ErrorAsync(HttpStatusCode.UnsupportedMediaType, "content_type");
        await (await _client.IngestAsync("errors", new { content_base64 = Convert.ToBase64String(png) })).ErrorAsync(HttpStatusCode.UnsupportedMediaType);
        await (await _client.IngestAsync("errors", new { content_base64 = "not base64!" })).ErrorAsync(HttpStatusCode.BadRequest, "content_base64");
        await (await _client.IngestAsync("errors", new { text = "x", metadata = new { tags = new[] { "a" } } })).ErrorAsync(HttpStatusCode.BadRequest, "metadata.tags");
        var xml = new StringContent("<a/>", Encoding.UTF8, "application/xml");
        await (await _client.PostAsync("/v1/collections/errors/documents", xml)).ErrorAsync(HttpStatusCode.UnsupportedMediaType);

        var search = await _client.PostAsJsonAsync("/v1/collections/errors/search", new { query = "x", top_k = 0 });
        await search.ErrorAsync(HttpStatusCode.BadRequest, "top_k");
        search = await _client.PostAsJsonAsync("/v1/collections/errors/search", new { query = "x", mode = "fuzzy" });
        await search.ErrorAsync(HttpStatusCode.BadRequest, "mode");
        search = await _client.PostAsJsonAsync("/v1/collections/errors/search", new { top_k = 3 });
        await search.ErrorAsync(HttpStatusCode.BadRequest, "query");
        Assert.Equal(0, await ChunkRowsAsync("errors", null));
    }

    private async Task<long> ChunkRowsAsync(string collection, string? documentId)
    {
        await using var connection = new Npgsql.NpgsqlConnection(_database);
        await connection.OpenAsync();
        await using var command = new Npgsql.NpgsqlCommand(
            "SELECT count(*) FROM chunks WHERE tenant = 'tenant-a' AND collection = $1 AND ($2::text IS NULL OR document_id = $2)", connection);
        command.Parameters.AddWithValue(collection);
        command.Parameters.Add(new Npgsql.NpgsqlParameter { Value = (object?)documentId ?? DBNull.Value, NpgsqlDbType = NpgsqlTypes.NpgsqlDbType.Text });
        return (long)(await command.ExecuteScalarAsync())!;
    }
}
