namespace AspireAi.Retrieval.VectorStores.Qdrant;

/// <summary>
/// Text → sparse vector for Qdrant's keyword side of hybrid search: one dimension per word (a 32-bit FNV-1a hash of its
/// lower-cased form), weighted by BM25's saturated term frequency. Qdrant's <c>Modifier.Idf</c> multiplies in the inverse
/// document frequency at query time, so together they score BM25.
/// </summary>
internal static class SparseTextEncoder
{
    private const float K1 = 1.2f;
    private const float B = 0.75f;

    /// <summary>Average chunk length in words, fixed because Qdrant keeps no corpus statistics: 180-token chunks are ~130 words.</summary>
    private const float AverageLength = 130f;

    private static readonly HashSet<string> StopWords =
    [
        "a", "an", "and", "are", "as", "at", "be", "by", "for", "from", "has", "have", "in", "is", "it", "its", "of", "on",
        "or", "that", "the", "this", "to", "was", "were", "will", "with", "which", "what", "how", "when", "who", "why",
    ];

    /// <summary>A document's vector: BM25 term-frequency weights.</summary>
    public static (float[] Values, uint[] Indices) Document(string text)
    {
        var counts = Count(text, out var length);
        var norm = K1 * (1 - B + B * length / AverageLength);
        var indices = counts.Keys.ToArray();
        var values = indices.Select(i => counts[i] * (K1 + 1) / (counts[i] + norm)).ToArray();
        return (values, indices);
    }

    /// <summary>A query's vector: weight 1 per distinct word (Qdrant's IDF weights them).</summary>
    public static (float[] Values, uint[] Indices) Query(string text)
    {
        var indices = Count(text, out _).Keys.ToArray();
        return (Enumerable.Repeat(1f, indices.Length).ToArray(), indices);
    }

    private static Dictionary<uint, int> Count(string text, out int length)
    {
        var counts = new Dictionary<uint, int>();
        length = 0;
        foreach (var word in Words(text))
        {
            length++;
            if (!StopWords.Contains(word))
            {
                var id = Hash(word);
                counts[id] = counts.GetValueOrDefault(id) + 1;
            }
        }

        return counts;
    }

    private static IEnumerable<string> Words(string text)
    {
        var start = -1;
        for (var i = 0; i <= text.Length; i++)
        {
            var isWord = i < text.Length && char.IsLetterOrDigit(text[i]);
            if (isWord && start < 0)
            {
                start = i;
            }
            else if (!isWord && start >= 0)
            {
                yield return text[start..i].ToLowerInvariant();
                start = -1;
            }
        }
    }

    private static uint Hash(string word)
    {
        var hash = 2166136261u;
        foreach (var c in word)
        {
            hash = (hash ^ c) * 16777619u;
        }

        return hash;
    }
}
