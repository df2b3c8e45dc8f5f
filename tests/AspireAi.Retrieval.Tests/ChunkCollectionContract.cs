using AspireAi.Retrieval.VectorStores;
using Microsoft.Extensions.VectorData;

namespace AspireAi.Retrieval.Tests;

/// <summary>
/// One suite for every vector store behind <see cref="ChunkCollection"/> (Microsoft.Extensions.VectorData): each backend
/// derives from it and supplies its collections. Vectors are small hand-made unit vectors so that the expected order is known.
/// </summary>
public abstract class ChunkCollectionContract
{
    private readonly string _collection = "c" + Guid.NewGuid().ToString("N")[..12];

    /// <summary>A collection of the backend under test (skips the test when the backend is not available here).</summary>
    protected abstract Task<ChunkCollection> CollectionAsync(string tenant, string collection);

    [Fact]
    public async Task Upserted_chunks_can_be_read_back_by_key_and_by_filter()
    {
        var store = await CollectionAsync("t1", _collection);
        await store.UpsertAsync(Records("doc-a", "v1", ("Volcanic ash clouds", [1, 0, 0, 0]), ("Lava flows downhill", [0.9f, 0.1f, 0, 0])));
        var first = Id("doc-a", "v1", 0);
        var read = await store.GetAsync(first);
        Assert.Equal("Volcanic ash clouds", read!.Text);
        Assert.Equal("en", read.Metadata["lang"]);
        var byFilter = await store.GetAsync(r => r.DocumentId == "doc-a", 10).ToListAsync();
        Assert.Equal(2, byFilter.Count);
        Assert.Null(await (await CollectionAsync("t2", _collection)).GetAsync(first));
    }

    [Fact]
    public async Task Dense_search_ranks_by_cosine_similarity_within_the_filter()
    {
        var store = await CollectionAsync("t1", _collection);
        await store.UpsertAsync(Records("doc-a", "v1", ("north", [1, 0, 0, 0]), ("north-east", [0.7071f, 0.7071f, 0, 0])));
        await store.UpsertAsync(Records("doc-b", "v1", [("east", [0, 1, 0, 0])], "fr"));
        var results = await store.SearchAsync(new float[] { 1, 0, 0, 0 }, 3).ToListAsync();
        Assert.Equal(["north", "north-east", "east"], results.Select(r => r.Record.Text));
        Assert.Equal(1.0, results[0].Score!.Value, 3);

        var french = await store.SearchAsync(new float[] { 1, 0, 0, 0 }, 3,
            new VectorSearchOptions<ChunkRecord> { Filter = r => r.Metadata["lang"] == "fr" }).ToListAsync();
        Assert.Equal(["east"], french.Select(r => r.Record.Text));
    }

    [Fact]
    public async Task Keyword_and_hybrid_search_find_words_and_fuse_rankings()
    {
        var store = await CollectionAsync("t1", _collection);
        await store.UpsertAsync(Records("doc-a", "v1",
            ("The zeppelin floated over the harbour", [0, 0, 1, 0]),
            ("Submarines dive below the waves", [1, 0, 0, 0]),
            ("Trains run on rails across the plain", [0, 1, 0, 0])));
        var keyword = await store.KeywordSearchAsync("zeppelin", 3, ChunkFilter.None).ToListAsync();
        Assert.Equal(["The zeppelin floated over the harbour"], keyword.Select(r => r.Record.Text));

        // Dense prefers the submarine, keywords the zeppelin: fusion ranks both first, ahead of the train.
        var hybrid = await store.HybridSearchAsync(new float[] { 1, 0, 0, 0 }, ["zeppelin"], 3).ToListAsync();
        Assert.Equal(3, hybrid.Count);
        Assert.Equal("Trains run on rails across the plain", hybrid[2].Record.Text);
    }

    [Fact]
    public async Task Deleting_a_document_keeps_only_the_named_version()
    {
        var store = await CollectionAsync("t1", _collection);
        await store.UpsertAsync(Records("doc-a", "old", ("old text", [1, 0, 0, 0])));
        await store.UpsertAsync(Records("doc-a", "new", ("new text", [1, 0, 0, 0])));
        await store.DeleteDocumentAsync("doc-a", keepVersion: "new");
        Assert.Equal(["new text"], (await store.SearchAsync(new float[] { 1, 0, 0, 0 }, 5).ToListAsync()).Select(r => r.Record.Text));
        await store.DeleteDocumentAsync("doc-a", keepVersion: null);
        Assert.Empty(await store.SearchAsync(new float[] { 1, 0, 0, 0 }, 5).ToListAsync());
    }

    [Fact]
    public async Task A_tenant_never_sees_another_tenants_chunks()
    {
        var mine = await CollectionAsync("t1", _collection);
        var theirs = await CollectionAsync("t2", _collection);
        await theirs.UpsertAsync(Records("doc-x", "v1", ("their secret zeppelin", [1, 0, 0, 0])));
        Assert.Empty(await mine.SearchAsync(new float[] { 1, 0, 0, 0 }, 5).ToListAsync());
        Assert.Empty(await mine.KeywordSearchAsync("zeppelin", 5, ChunkFilter.None).ToListAsync());
        Assert.Empty(await mine.HybridSearchAsync(new float[] { 1, 0, 0, 0 }, ["zeppelin"], 5).ToListAsync());
        await mine.EnsureCollectionDeletedAsync();
        Assert.Single(await theirs.SearchAsync(new float[] { 1, 0, 0, 0 }, 5).ToListAsync());
    }

    private Guid Id(string documentId, string version, int index) => ChunkRecord.IdFor("any", _collection, documentId, version, index);

    private IEnumerable<ChunkRecord> Records(string documentId, string version, params (string Text, float[] Vector)[] chunks) =>
        Records(documentId, version, chunks, "en");

    private IEnumerable<ChunkRecord> Records(string documentId, string version, (string Text, float[] Vector)[] chunks, string lang) =>
        chunks.Select((c, i) => new ChunkRecord
        {
            Id = Id(documentId, version, i),
            DocumentId = documentId,
            DocumentVersion = version,
            ChunkIndex = i,
            Text = c.Text,
            MetadataJson = $$"""{"lang":"{{lang}}"}""",
            Embedding = Normalize(c.Vector),
        });

    private static float[] Normalize(float[] v)
    {
        var norm = System.Numerics.Tensors.TensorPrimitives.Norm(v);
        return [.. v.Select(x => x / norm)];
    }
}
