using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using AspireAi.TestSupport;

namespace AspireAi.Retrieval.Tests;

/// <summary>Each format by each transport, long ingestions as jobs, outages of the embedding service, and restarts.</summary>
public sealed class IngestionTests(PostgresServer postgres, EmbeddingServer embeddings) : IAsyncLifetime
{
    private static readonly Dictionary<string, string?> Settings = new() { ["Retrieval:SyncChunkLimit"] = "4", ["Retrieval:ChunkTokens"] = "60" };
    private string _database = null!;
    private RetrievalHost _host = null!;
    private HttpClient _client = null!;

    public async ValueTask InitializeAsync()
    {
        _database = await postgres.CreateDatabaseAsync("ingestion");
        _host = new RetrievalHost(_database, embeddings.BaseAddress, Settings);
        _client = _host.ClientFor("t1");
        await _client.CreateCollectionAsync("docs");
    }

    public async ValueTask DisposeAsync() => await _host.DisposeAsync();

    [Fact]
    public async Task Markdown_is_chunked_by_section_with_its_headings()
    {
        var ingested = await (await _client.IngestAsync("docs", new { id = "md", text = Documents.Markdown, content_type = "text/markdown" }))
            .JsonAsync(HttpStatusCode.Created);
        Assert.True(ingested.GetProperty("chunks").GetInt32() >= 2);
        var hit = (await _client.SearchAsync("docs", "magma chambers feed eruptions", "keyword"))[0];
        Assert.StartsWith("Geology › Volcanoes", hit.Text());
        Assert.DoesNotContain("##", hit.Text());
        var code = (await _client.SearchAsync("docs", "Eruption magma 1200", "keyword"))[0];
        Assert.StartsWith("Geology › Code sample", code.Text());
        Assert.Contains("new Eruption(magma: 1200)", code.Text());
    }

    [Fact]
    public async Task Html_keeps_text_and_headings_and_drops_scripts_styles_and_navigation()
    {
        using var content = new MultipartFormDataContent();
        var file = new ByteArrayContent(Encoding.UTF8.GetBytes(Documents.Html));
        file.Headers.ContentType = new MediaTypeHeaderValue("text/html");
        content.Add(file, "file", "kitchen.html");
        content.Add(new StringContent("""{"source":"kitchen"}"""), "metadata");
        content.Add(new StringContent("kitchen"), "id");
        var ingested = await (await _client.PostAsync("/v1/collections/docs/documents", content)).JsonAsync(HttpStatusCode.Created);
        Assert.Equal("kitchen", ingested.GetProperty("document_id").GetString());

        var all = await _client.SearchAsync("docs", "yeast gluten castling rook loose div bold", "keyword", 10, new { source = "kitchen" });
        var text = string.Join("\n", all.Select(r => r.Text()));
        Assert.Contains("Bread dough rises", text);
        Assert.Contains("Loose text in a div with bold words.", text);
        Assert.Contains("Baking › Chess", text);
        Assert.DoesNotContain("zeppelin", text);
        Assert.DoesNotContain("color", text);
        Assert.DoesNotContain("Home | About", text);
        Assert.Empty(await _client.SearchAsync("docs", "zeppelin", "keyword"));
    }

    [Fact]
    public async Task Pdf_by_base64_and_by_url_are_read_page_by_page()
    {
        var pdf = Documents.Pdf();
        var ingested = await (await _client.IngestAsync("docs", new { id = "pdf", content_base64 = Convert.ToBase64String(pdf) }))
            .JsonAsync(HttpStatusCode.Created);
        Assert.Equal(1, ingested.GetProperty("chunks").GetInt32());
        var hit = (await _client.SearchAsync("docs", "how far away is the closest star", "dense"))[0];
        Assert.Equal("pdf", hit.DocumentId());
        Assert.Contains("Proxima Centauri, the nearest star to the Sun, is roughly 4.24 light-years away.", hit.Text());
        Assert.Contains("9.46 trillion kilometres", hit.Text());

        embeddings.Files["stars.pdf"] = ("application/pdf", pdf);
        var byUrl = await (await _client.IngestAsync("docs", new { url = $"{embeddings.BaseAddress}/files/stars.pdf" })).JsonAsync(HttpStatusCode.Created);
        var urlHit = (await _client.SearchAsync("docs", "Proxima", "keyword", 10, new { document_id = byUrl.GetProperty("document_id").GetString() }))[0];
        Assert.Equal($"{embeddings.BaseAddress}/files/stars.pdf", urlHit.GetProperty("metadata").GetProperty("source").GetString());
        await (await _client.IngestAsync("docs", new { url = $"{embeddings.BaseAddress}/files/missing.pdf" })).ErrorAsync(HttpStatusCode.BadRequest, "url");
        var broken = Convert.ToBase64String(Encoding.ASCII.GetBytes("%PDF-1.7 not really"));
        await (await _client.IngestAsync("docs", new { content_base64 = broken })).ErrorAsync(HttpStatusCode.BadRequest);
    }

    [Fact]
    public async Task A_long_document_is_ingested_as_a_job_whose_progress_can_be_followed()
    {
        var text = string.Join("\n\n", Enumerable.Range(1, 12).Select(i => $"Paragraph {i}: " + Corpus.Astronomy));
        var accepted = await (await _client.IngestAsync("docs", new { id = "long", text })).JsonAsync(HttpStatusCode.Accepted);
        var job = accepted.GetProperty("ingestion_id").GetString()!;
        Assert.True(accepted.GetProperty("chunks").GetInt32() > 4);

        var done = await WaitForJobAsync(_client, job, "succeeded");
        Assert.Equal(done.GetProperty("chunks_total").GetInt32(), done.GetProperty("chunks_done").GetInt32());
        Assert.Equal(1.0, done.GetProperty("progress").GetDouble());
        var hits = await _client.SearchAsync("docs", "Paragraph 12", "keyword", 3);
        Assert.Contains(hits, h => h.Text().Contains("Paragraph 12:"));
        await (await _host.ClientFor("t2").GetAsync($"/v1/ingestions/{job}")).ErrorAsync(HttpStatusCode.NotFound, "id");
    }

    [Fact]
    public async Task When_embeddings_are_down_a_request_gets_503_and_a_job_waits_then_resumes()
    {
        using var port = new ReservedPort(); // nothing listens here yet
        await using var host = new RetrievalHost(_database, $"http://127.0.0.1:{port.Port}", Settings);
        var client = host.ClientFor("outage");
        await client.CreateCollectionAsync("outage");

        var refused = await client.IngestAsync("outage", new { id = "small", text = Corpus.Chess });
        await refused.ErrorAsync(HttpStatusCode.ServiceUnavailable);
        Assert.Equal(TimeSpan.FromSeconds(5), refused.Headers.RetryAfter?.Delta);
        var search = await client.PostAsJsonAsync("/v1/collections/outage/search", new { query = "castling", mode = "dense" });
        await search.ErrorAsync(HttpStatusCode.ServiceUnavailable);
        Assert.Empty(await client.SearchAsync("outage", "castling", "keyword")); // keyword search needs no embeddings: nothing was written

        var text = string.Join("\n\n", Enumerable.Range(1, 10).Select(i => $"Item {i}. " + Corpus.Chess));
        var job = (await (await client.IngestAsync("outage", new { id = "big", text })).JsonAsync(HttpStatusCode.Accepted))
            .GetProperty("ingestion_id").GetString()!;
        var waiting = await WaitForJobAsync(client, job, "waiting");
        Assert.Contains("could not be reached", waiting.GetProperty("error").GetString());
        Assert.Empty(await client.SearchAsync("outage", "Item castling", "keyword"));

        await using var revived = new EmbeddingServer(port);
        await revived.InitializeAsync();
        await WaitForJobAsync(client, job, "succeeded");
        Assert.NotEmpty(await client.SearchAsync("outage", "Item castling", "keyword"));
        await (await client.IngestAsync("outage", new { id = "small", text = Corpus.Chess })).JsonAsync(HttpStatusCode.Created);
    }

    [Fact]
    public async Task After_a_restart_the_index_is_rebuilt_from_PostgreSQL()
    {
        await _client.IngestAsync("docs", new { id = "v", text = Corpus.Volcanoes });
        await _client.IngestAsync("docs", new { id = "b", text = Corpus.Baking });
        var before = await _client.SearchAsync("docs", "mountains that erupt molten rock", "dense", 2);

        await using var restarted = new RetrievalHost(_database, embeddings.BaseAddress, Settings);
        var after = await restarted.ClientFor("t1").SearchAsync("docs", "mountains that erupt molten rock", "dense", 2);
        Assert.Equal(before.Select(r => (r.DocumentId(), r.GetProperty("score").GetDouble())), after.Select(r => (r.DocumentId(), r.GetProperty("score").GetDouble())));
        Assert.Equal("v", after[0].DocumentId());
    }

    private static async Task<JsonElement> WaitForJobAsync(HttpClient client, string job, string status)
    {
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (true)
        {
            var state = await (await client.GetAsync($"/v1/ingestions/{job}")).JsonAsync(HttpStatusCode.OK);
            var current = state.GetProperty("status").GetString();
            if (current == status)
            {
                return state;
            }

            Assert.True(current is "queued" or "running" or "waiting" && DateTime.UtcNow < deadline, $"Job {job} is '{current}', waiting for '{status}': {state}");
            await Task.Delay(100);
        }
    }
}
