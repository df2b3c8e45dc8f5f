namespace AspireAi.Retrieval.VectorStores.Embedded;

/// <summary>
/// BM25 over one collection's chunks, in memory beside the vectors: postings of PostgreSQL's <c>english</c> lexemes (the
/// stored <c>tsvector</c>: stemmed, stop words removed), so that documents and queries are analysed by one stemmer.
/// </summary>
/// <remarks>
/// In memory rather than PostgreSQL's <c>ts_rank</c>: ts_rank has no inverse document frequency, so every common word of
/// a question weighs as much as its one rare word (the evaluation in docs/performance.md measured the difference), and
/// ranking an OR-query in SQL reads every matching row. Not thread-safe: <see cref="VectorIndex"/> guards it with its lock.
/// Deleted slots stay in the postings (skipped by the caller's predicate); document frequencies count them until restart.
/// </remarks>
internal sealed class KeywordIndex
{
    private const float K1 = 1.2f;
    private const float B = 0.75f;

    private readonly Dictionary<string, List<(int Slot, int Count)>> _postings = new(StringComparer.Ordinal);
    private readonly List<int> _lengths = [];
    private long _totalLength;

    /// <summary>Indexes slot <c>Count</c> (slots are added in order).</summary>
    public void Add(IReadOnlyDictionary<string, int> terms)
    {
        var slot = _lengths.Count;
        var length = 0;
        foreach (var (term, count) in terms)
        {
            if (!_postings.TryGetValue(term, out var list))
            {
                _postings[term] = list = [];
            }

            list.Add((slot, count));
            length += count;
        }

        _lengths.Add(length);
        _totalLength += length;
    }

    /// <summary>The <paramref name="k"/> best accepted slots for <paramref name="terms"/> by BM25 (k1 = 1.2, b = 0.75).</summary>
    public List<(int Slot, float Score)> Search(IReadOnlyCollection<string> terms, int k, Func<int, bool> accept)
    {
        var documents = _lengths.Count;
        if (documents == 0)
        {
            return [];
        }

        var averageLength = Math.Max(1f, (float)_totalLength / documents);
        var scores = new Dictionary<int, float>();
        foreach (var term in terms)
        {
            if (!_postings.TryGetValue(term, out var postings))
            {
                continue;
            }

            // Lucene's IDF: never negative, so a word in most chunks adds little rather than subtracting.
            var idf = MathF.Log(1 + (documents - postings.Count + 0.5f) / (postings.Count + 0.5f));
            foreach (var (slot, count) in postings)
            {
                var norm = K1 * (1 - B + B * _lengths[slot] / averageLength);
                scores[slot] = scores.GetValueOrDefault(slot) + idf * count * (K1 + 1) / (count + norm);
            }
        }

        var best = new PriorityQueue<int, float>(k + 1);
        foreach (var (slot, score) in scores)
        {
            if (!accept(slot))
            {
                continue;
            }

            if (best.Count < k)
            {
                best.Enqueue(slot, score);
            }
            else if (best.TryPeek(out _, out var worst) && score > worst)
            {
                best.DequeueEnqueue(slot, score);
            }
        }

        var ranked = new List<(int, float)>(best.Count);
        while (best.TryDequeue(out var slot, out var score))
        {
            ranked.Add((slot, score));
        }

        ranked.Reverse();
        return ranked;
    }
}
