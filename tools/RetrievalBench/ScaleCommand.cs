using System.Diagnostics;
using AspireAi.Retrieval.VectorStores;
using AspireAi.Retrieval.VectorStores.Embedded;
using Microsoft.Extensions.Logging.Abstractions;

namespace AspireAi.RetrievalBench;

/// <summary>
/// Ingestion throughput and search latency of the embedded store at <c>chunks</c> chunks. The first <c>embedded</c>
/// chunks are real SDK-doc texts embedded end to end (the embedding-bound ingestion rate); the rest carry other members'
/// texts (53 000 distinct ones) with vectors that are those real embeddings plus noise, so that the index holds full size
/// without hours of CPU embedding (one 180-token chunk is ~5 GFLOP through all-MiniLM-L6-v2).
/// </summary>
internal static class ScaleCommand
{
    public static async Task RunAsync(BenchEnvironment env, int chunkCount, int embeddedCount, int queryCount)
    {
        var members = SdkDocs.Load();
        var random = new Random(42);
        members = [.. members.OrderBy(_ => random.Next())];
        embeddedCount = Math.Min(embeddedCount, Math.Min(chunkCount, members.Count));
        var collectionName = $"scale{chunkCount}";
        var (store, _) = env.EmbeddedStore(annThreshold: 20_000);
        var collection = store.Collection("bench", collectionName, "all-MiniLM-L6-v2");
        await collection.EnsureCollectionDeletedAsync();

        // 1. End to end: embed (HTTP → ONNX) and write, batch by batch, as an ingestion job does.
        var clock = Stopwatch.StartNew();
        var real = new float[embeddedCount][];
        for (var start = 0; start < embeddedCount; start += 256)
        {
            var texts = members.Skip(start).Take(Math.Min(256, embeddedCount - start)).Select(m => m.Document(false)).ToList();
            var vectors = await env.EmbedAsync(texts);
            vectors.CopyTo(real, start);
            await collection.UpsertAsync(texts.Select((t, j) => BenchEnvironment.Record(collectionName, $"d{start + j}", 0, t, vectors[j])));
        }

        var endToEnd = clock.Elapsed.TotalSeconds;
        Console.WriteLine($"ingest end to end (embed + write): {embeddedCount} chunks in {endToEnd:F1} s = {embeddedCount / endToEnd:F0} chunks/s");

        // 2. The store alone: PostgreSQL rows + in-memory index, 256 chunks per transaction.
        clock.Restart();
        var noise = new Random(1);
        for (var start = embeddedCount; start < chunkCount; start += 256)
        {
            var batch = Enumerable.Range(start, Math.Min(256, chunkCount - start)).Select(i =>
            {
                // Noise of norm ≈ 0.8 (uniform ±0.07 per component): a copy keeps cosine ≈ 0.8 with its source, about as close as
                // real near neighbours are, so copies spread out instead of forming tight clusters of near-ties.
                var vector = real[i % embeddedCount].Select(x => x + (float)(noise.NextDouble() - 0.5) * 0.14f).ToArray();
                System.Numerics.Tensors.TensorPrimitives.Divide(vector, System.Numerics.Tensors.TensorPrimitives.Norm(vector), vector);
                return BenchEnvironment.Record(collectionName, $"d{i}", 0, members[i % members.Count].Document(false), vector);
            }).ToList();
            await collection.UpsertAsync(batch);
        }

        var written = chunkCount - embeddedCount;
        if (written > 0)
        {
            Console.WriteLine($"store writes (vectors given): {written} chunks in {clock.Elapsed.TotalSeconds:F1} s = {written / clock.Elapsed.TotalSeconds:F0} chunks/s");
        }

        // 3. A restart: the index rebuilt from PostgreSQL, then the HNSW graph in the background.
        var (restartedStore, indexes) = env.EmbeddedStore(annThreshold: 20_000);
        clock.Restart();
        await new EmbeddedIndexLoader(env.Db, indexes, NullLogger<EmbeddedIndexLoader>.Instance).StartAsync(CancellationToken.None);
        var load = clock.Elapsed.TotalSeconds;
        var index = indexes.Find("bench", collectionName)!;
        await index.GraphBuild;
        Console.WriteLine($"restart: {index.Count} chunks loaded from PostgreSQL in {load:F1} s; HNSW graph {(index.HasGraph ? $"built in {clock.Elapsed.TotalSeconds - load:F1} s more" : "not built (below Retrieval:AnnThreshold)")}");
        collection = restartedStore.Collection("bench", collectionName, "all-MiniLM-L6-v2");

        // 4. Latency over real queries (first sentences of summaries), embedded once up front.
        var queryTexts = members.Skip(embeddedCount).Take(queryCount).Select(m => m.FirstSentence).ToList();
        clock.Restart();
        var queryVectors = await env.EmbedAsync(queryTexts);
        var embedOne = Percentiles(await TimeEach(queryTexts.Take(50).ToList(), async q => await env.EmbedAsync([q])));
        Console.WriteLine($"query embedding (HTTP + ONNX, one text): p50 {embedOne.P50:F1} ms, p99 {embedOne.P99:F1} ms");

        var rows = new List<(string Name, (double P50, double P99) Latency)>
        {
            ("index only, exact (SIMD scan)", Percentiles(await TimeEach(queryVectors, v => { index.Search(v, 10, ChunkFilter.None, exact: true); return Task.CompletedTask; }))),
        };
        if (index.HasGraph)
        {
            rows.Add(("index only, HNSW", Percentiles(await TimeEach(queryVectors, v => { index.Search(v, 10, ChunkFilter.None); return Task.CompletedTask; }))));
        }

        rows.Add(("dense search (index + rows from PostgreSQL)", Percentiles(await TimeEach(queryVectors, async v => await collection.SearchAsync(v, 10).ToListAsync()))));
        rows.Add(("keyword search (PostgreSQL full text)", Percentiles(await TimeEach(queryTexts, async q => await collection.KeywordSearchAsync(q, 10, ChunkFilter.None).ToListAsync()))));
        var pairs = queryTexts.Zip(queryVectors).ToList();
        rows.Add(("hybrid search (both + RRF)", Percentiles(await TimeEach(pairs, async p => await collection.HybridSearchAsync(p.Second, [p.First], 10).ToListAsync()))));

        Console.WriteLine($"\n| search at {chunkCount} chunks, top 10 | p50 ms | p99 ms |");
        Console.WriteLine("| --- | --- | --- |");
        foreach (var (name, latency) in rows)
        {
            Console.WriteLine($"| {name} | {latency.P50:F2} | {latency.P99:F2} |");
        }

        if (index.HasGraph)
        {
            Console.WriteLine("\n| HNSW efSearch | recall@10 vs exact | p50 ms | p99 ms |");
            Console.WriteLine("| --- | --- | --- | --- |");
            var exact = queryVectors.Select(v => index.Search(v, 10, ChunkFilter.None, exact: true).Select(r => r.Id).ToHashSet()).ToList();
            foreach (var ef in new[] { 40, 80, 160, 320 })
            {
                var overlap = queryVectors.Select((v, i) => index.Search(v, 10, ChunkFilter.None, efSearch: ef).Count(r => exact[i].Contains(r.Id))).Sum();
                var latency = Percentiles(await TimeEach(queryVectors, v => { index.Search(v, 10, ChunkFilter.None, efSearch: ef); return Task.CompletedTask; }));
                Console.WriteLine($"| {ef} | {overlap / (queryVectors.Length * 10.0):F3} | {latency.P50:F2} | {latency.P99:F2} |");
            }
        }
    }

    private static async Task<List<double>> TimeEach<T>(IReadOnlyList<T> items, Func<T, Task> action)
    {
        await action(items[0]); // warm-up
        var times = new List<double>(items.Count);
        foreach (var item in items)
        {
            var start = Stopwatch.GetTimestamp();
            await action(item);
            times.Add(Stopwatch.GetElapsedTime(start).TotalMilliseconds);
        }

        return times;
    }

    private static (double P50, double P99) Percentiles(List<double> times)
    {
        times.Sort();
        return (times[(int)(0.50 * (times.Count - 1))], times[(int)Math.Ceiling(0.99 * (times.Count - 1))]);
    }
}
