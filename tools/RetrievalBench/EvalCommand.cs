using System.Diagnostics;
using AspireAi.Retrieval.VectorStores;
using Microsoft.Extensions.VectorData;

namespace AspireAi.RetrievalBench;

/// <summary>
/// Retrieval quality on the SDK's API docs: <c>members</c> documents are indexed; for <c>queries</c> of them the first
/// sentence of the summary is held out of the document and used as the query, so a hit must come from the rest of the
/// member's documentation (its name, the remaining summary, remarks, parameters, return value), never the same words.
/// </summary>
internal static class EvalCommand
{
    public static async Task RunAsync(BenchEnvironment env, int memberCount, int queryCount)
    {
        var all = SdkDocs.Load();
        var random = new Random(20261126);
        var members = all.OrderBy(_ => random.Next()).Take(memberCount).ToList();
        // A query must name exactly one member: its sentence must be no other member's first sentence (overloads share them).
        var sentenceCounts = members.GroupBy(m => m.FirstSentence).ToDictionary(g => g.Key, g => g.Count());
        var queries = members.Where(m => sentenceCounts[m.FirstSentence] == 1 && m.Document(true).Length > m.Name.Length + 20)
            .Take(queryCount).ToList();
        var heldOut = queries.Select(q => q.Name + "|" + q.FirstSentence).ToHashSet();
        Console.WriteLine($"corpus: {members.Count} members (of {all.Count} documented), {queries.Count} queries");

        var documents = members.Select((m, i) => (Id: $"m{i}", Text: m.Document(heldOut.Contains(m.Name + "|" + m.FirstSentence)), Member: m)).ToList();
        var clock = Stopwatch.StartNew();
        var vectors = await env.EmbedAsync([.. documents.Select(d => d.Text)]);
        var embedSeconds = clock.Elapsed.TotalSeconds;

        var (store, indexes) = env.EmbeddedStore(annThreshold: 1000);
        var collection = store.Collection("bench", "eval", "all-MiniLM-L6-v2");
        await collection.EnsureCollectionDeletedAsync();
        clock.Restart();
        for (var start = 0; start < documents.Count; start += 256)
        {
            await collection.UpsertAsync(documents.Skip(start).Take(256).Select((d, j) => BenchEnvironment.Record("eval", d.Id, 0, d.Text, vectors[start + j])));
        }

        var writeSeconds = clock.Elapsed.TotalSeconds;
        Console.WriteLine($"ingest: {documents.Count} documents embedded in {embedSeconds:F1} s ({documents.Count / embedSeconds:F0}/s), written in {writeSeconds:F1} s");

        var target = queries.ToDictionary(q => q.FirstSentence, q => documents.First(d => d.Member == q).Id);
        var queryVectors = await env.EmbedAsync([.. queries.Select(q => q.FirstSentence)]);
        var index = indexes.Find("bench", "eval")!;
        await index.GraphBuild;

        var modes = new Dictionary<string, Func<int, Task<List<string>>>>
        {
            ["dense (exact)"] = async i =>
            {
                var ids = new List<string>();
                foreach (var (id, _) in index.Search(queryVectors[i], 10, ChunkFilter.None, exact: true))
                {
                    ids.Add((await collection.GetAsync(id))!.DocumentId);
                }

                return ids;
            },
            ["dense (HNSW)"] = async i => (await collection.SearchAsync(queryVectors[i], 10).ToListAsync()).Select(r => r.Record.DocumentId).ToList(),
            ["keyword"] = async i => (await collection.KeywordSearchAsync(queries[i].FirstSentence, 10, ChunkFilter.None).ToListAsync()).Select(r => r.Record.DocumentId).ToList(),
            ["hybrid (RRF)"] = async i => (await collection.HybridSearchAsync(queryVectors[i], [queries[i].FirstSentence], 10).ToListAsync()).Select(r => r.Record.DocumentId).ToList(),
        };

        Console.WriteLine();
        Console.WriteLine("| mode | recall@1 | recall@10 | MRR@10 |");
        Console.WriteLine("| --- | --- | --- | --- |");
        foreach (var (mode, search) in modes)
        {
            double top1 = 0, top10 = 0, reciprocal = 0;
            for (var i = 0; i < queries.Count; i++)
            {
                var ranked = (await search(i)).Distinct().Take(10).ToList();
                var rank = ranked.IndexOf(target[queries[i].FirstSentence]);
                top1 += rank == 0 ? 1 : 0;
                top10 += rank >= 0 ? 1 : 0;
                reciprocal += rank >= 0 ? 1.0 / (rank + 1) : 0;
            }

            Console.WriteLine($"| {mode} | {top1 / queries.Count:F3} | {top10 / queries.Count:F3} | {reciprocal / queries.Count:F3} |");
        }

        double overlap = 0;
        foreach (var query in queryVectors)
        {
            var exact = index.Search(query, 10, ChunkFilter.None, exact: true).Select(r => r.Id).ToHashSet();
            overlap += index.Search(query, 10, ChunkFilter.None).Count(r => exact.Contains(r.Id));
        }

        Console.WriteLine($"\nHNSW recall@10 against exact search: {overlap / (queryVectors.Length * 10):F3} ({index.Count} vectors)");
    }
}
