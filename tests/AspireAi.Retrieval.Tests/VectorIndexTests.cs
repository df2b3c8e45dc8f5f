using AspireAi.Retrieval.VectorStores;
using AspireAi.Retrieval.VectorStores.Embedded;

namespace AspireAi.Retrieval.Tests;

/// <summary>The embedded store's in-memory index: exact search, and the HNSW graph measured against it.</summary>
public sealed class VectorIndexTests
{
    private const int Dimensions = 32;
    private static readonly IReadOnlyDictionary<string, string> NoMetadata = new Dictionary<string, string>();
    private static readonly IReadOnlyDictionary<string, int> NoTerms = new Dictionary<string, int>();

    [Fact]
    public async Task Hnsw_finds_nearly_every_exact_neighbour_and_skips_deleted_chunks()
    {
        var random = new Random(7);
        var index = new VectorIndex(Dimensions, new RetrievalOptions { AnnThreshold = 1500, HnswM = 12, HnswEfConstruction = 80, HnswEfSearch = 64 });
        // Clustered data, like embeddings: 40 centres, points scattered around them.
        var centres = Enumerable.Range(0, 40).Select(_ => RandomUnit(random, null, 0)).ToArray();
        var ids = new List<Guid>();
        index.Add(Enumerable.Range(0, 3000).Select(i =>
        {
            var id = Guid.NewGuid();
            ids.Add(id);
            return new IndexedChunk(id, $"doc{i}", NoMetadata, RandomUnit(random, centres[i % centres.Length], 0.35f), NoTerms);
        }));
        Assert.False(index.HasGraph && index.Count < 1500);
        await index.GraphBuild;
        Assert.True(index.HasGraph);

        var queries = Enumerable.Range(0, 50).Select(i => RandomUnit(random, centres[i % centres.Length], 0.4f)).ToArray();
        double found = 0;
        foreach (var query in queries)
        {
            var exact = index.Search(query, 10, ChunkFilter.None, exact: true).Select(r => r.Id).ToHashSet();
            var approximate = index.Search(query, 10, ChunkFilter.None);
            Assert.Equal(10, approximate.Count);
            Assert.True(approximate.Zip(approximate.Skip(1)).All(p => p.First.Score >= p.Second.Score));
            found += approximate.Count(r => exact.Contains(r.Id));
        }

        var recall = found / (queries.Length * 10);
        Assert.True(recall >= 0.95, $"HNSW recall@10 against exact search: {recall:P1}");

        var top = index.Search(queries[0], 1, ChunkFilter.None)[0].Id;
        index.Remove([top]);
        Assert.DoesNotContain(index.Search(queries[0], 10, ChunkFilter.None), r => r.Id == top);
        Assert.DoesNotContain(index.Search(queries[0], 10, ChunkFilter.None, exact: true), r => r.Id == top);
        Assert.Equal(2999, index.Count);
    }

    [Fact]
    public void Exact_search_ranks_by_cosine_and_applies_filters_before_ranking()
    {
        var index = new VectorIndex(3, new RetrievalOptions());
        var a = Guid.NewGuid();
        var b = Guid.NewGuid();
        var c = Guid.NewGuid();
        index.Add([
            new IndexedChunk(a, "d1", new Dictionary<string, string> { ["lang"] = "en" }, new float[] { 1, 0, 0 }, NoTerms),
            new IndexedChunk(b, "d2", new Dictionary<string, string> { ["lang"] = "fr" }, new float[] { 0.8f, 0.6f, 0 }, NoTerms),
            new IndexedChunk(c, "d3", new Dictionary<string, string> { ["lang"] = "en" }, new float[] { 0, 0, 1 }, NoTerms),
        ]);
        var ranked = index.Search(new float[] { 1, 0, 0 }, 3, ChunkFilter.None);
        Assert.Equal([a, b, c], ranked.Select(r => r.Id));
        Assert.Equal([1f, 0.8f, 0f], ranked.Select(r => MathF.Round(r.Score, 4)));
        var english = index.Search(new float[] { 1, 0, 0 }, 3, new ChunkFilter([new FilterClause("lang", ["en"])]));
        Assert.Equal([a, c], english.Select(r => r.Id));
        Assert.Throws<ArgumentException>(() => index.Search(new float[] { 1, 0 }, 3, ChunkFilter.None));
    }

    [Fact]
    public void Keyword_search_weighs_a_rare_word_above_frequent_common_ones()
    {
        var index = new VectorIndex(1, new RetrievalOptions());
        var rare = Guid.NewGuid();
        var chunks = Enumerable.Range(0, 20).Select(i => new IndexedChunk(Guid.NewGuid(), $"d{i}", NoMetadata, new float[] { 1 },
            new Dictionary<string, int> { ["data"] = 5, ["valu"] = 3 })).ToList();
        chunks.Add(new IndexedChunk(rare, "rare", NoMetadata, new float[] { 1 }, new Dictionary<string, int> { ["data"] = 1, ["zeppelin"] = 1 }));
        index.Add(chunks);

        var ranked = index.KeywordSearch(["data", "valu", "zeppelin"], 3, ChunkFilter.None);
        Assert.Equal(rare, ranked[0].Id);
        Assert.True(ranked[0].Score > ranked[1].Score);
        Assert.Empty(index.KeywordSearch(["absent"], 3, ChunkFilter.None));
        index.Remove([rare]);
        Assert.DoesNotContain(index.KeywordSearch(["zeppelin", "data"], 30, ChunkFilter.None), r => r.Id == rare);
    }

    private static float[] RandomUnit(Random random, float[]? centre, float spread)
    {
        var vector = new float[Dimensions];
        for (var i = 0; i < Dimensions; i++)
        {
            vector[i] = (centre?[i] ?? 0) + (centre is null ? 1 : spread) * (float)(random.NextDouble() * 2 - 1);
        }

        System.Numerics.Tensors.TensorPrimitives.Divide(vector, System.Numerics.Tensors.TensorPrimitives.Norm(vector), vector);
        return vector;
    }
}
