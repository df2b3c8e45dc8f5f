namespace AspireAi.Retrieval.VectorStores.Embedded;

/// <summary>
/// A hierarchical navigable small-world graph (Malkov and Yashunin, 2016) over unit vectors, similarity = dot product.
/// </summary>
/// <remarks>
/// Written here because the package registry serves no maintained HNSW library for .NET, and the embedded store needs
/// one only over vectors it already holds in memory: nodes are the index's slots, vectors are read through
/// <see cref="_vector"/>. Insertion is single-writer (the caller's lock); searches may run concurrently with each other.
/// Deleted slots stay in the graph as stepping stones and are filtered out of results by the caller's predicate.
/// </remarks>
internal sealed class HnswGraph
{
    private readonly Func<int, ReadOnlyMemory<float>> _vector;
    private readonly int _m;
    private readonly int _efConstruction;
    private readonly double _levelFactor;
    private readonly Random _random = new(42); // fixed: the same data builds the same graph
    private readonly List<List<int>[]> _neighbours = [];
    private int _entryPoint = -1;
    private int _maxLevel = -1;

    public HnswGraph(Func<int, ReadOnlyMemory<float>> vector, int m, int efConstruction)
    {
        _vector = vector;
        _m = m;
        _efConstruction = Math.Max(efConstruction, m);
        _levelFactor = 1 / Math.Log(m);
    }

    /// <summary>Slots inserted so far (slots 0 … Count−1).</summary>
    public int Count => _neighbours.Count;

    /// <summary>Inserts the next slot (<see cref="Count"/>).</summary>
    public void Add()
    {
        var node = _neighbours.Count;
        var level = (int)(-Math.Log(1 - _random.NextDouble()) * _levelFactor);
        var lists = new List<int>[level + 1];
        for (var l = 0; l <= level; l++)
        {
            lists[l] = new List<int>(MaxDegree(l) + 1);
        }

        _neighbours.Add(lists);
        if (_entryPoint < 0)
        {
            (_entryPoint, _maxLevel) = (node, level);
            return;
        }

        var query = _vector(node).Span;
        var entry = _entryPoint;
        for (var l = _maxLevel; l > level; l--)
        {
            entry = Greedy(query, entry, l);
        }

        var entries = new List<int> { entry };
        for (var l = Math.Min(level, _maxLevel); l >= 0; l--)
        {
            var candidates = SearchLayer(query, entries, _efConstruction, l, static _ => true);
            var chosen = SelectNeighbours(candidates, _m);
            foreach (var (neighbour, _) in chosen)
            {
                lists[l].Add(neighbour);
                var back = _neighbours[neighbour][l];
                back.Add(node);
                if (back.Count > MaxDegree(l))
                {
                    Shrink(neighbour, l);
                }
            }

            entries = [.. candidates.Select(c => c.Node)];
        }

        if (level > _maxLevel)
        {
            (_entryPoint, _maxLevel) = (node, level);
        }
    }

    /// <summary>The <paramref name="k"/> most similar accepted slots, best first, exploring <paramref name="ef"/> candidates.</summary>
    public List<(int Node, float Similarity)> Search(ReadOnlySpan<float> query, int k, int ef, Func<int, bool> accept)
    {
        if (_entryPoint < 0)
        {
            return [];
        }

        var entry = _entryPoint;
        for (var l = _maxLevel; l > 0; l--)
        {
            entry = Greedy(query, entry, l);
        }

        var found = SearchLayer(query, [entry], Math.Max(ef, k), 0, accept);
        return found.Count > k ? found[..k] : found;
    }

    private int MaxDegree(int level) => level == 0 ? 2 * _m : _m;

    private float Similarity(ReadOnlySpan<float> query, int node) =>
        System.Numerics.Tensors.TensorPrimitives.Dot(query, _vector(node).Span);

    private int Greedy(ReadOnlySpan<float> query, int entry, int level)
    {
        var best = Similarity(query, entry);
        for (var improved = true; improved;)
        {
            improved = false;
            foreach (var neighbour in _neighbours[entry][level])
            {
                var similarity = Similarity(query, neighbour);
                if (similarity > best)
                {
                    (best, entry, improved) = (similarity, neighbour, true);
                }
            }
        }

        return entry;
    }

    /// <summary>Beam search on one layer; returns up to <paramref name="ef"/> accepted nodes, most similar first.</summary>
    private List<(int Node, float Similarity)> SearchLayer(ReadOnlySpan<float> query, List<int> entries, int ef, int level, Func<int, bool> accept)
    {
        var visited = new HashSet<int>(entries);
        var candidates = new PriorityQueue<int, float>(); // most similar first (priority = −similarity)
        var results = new PriorityQueue<int, float>();    // least similar first, at most ef
        foreach (var entry in entries)
        {
            var similarity = Similarity(query, entry);
            candidates.Enqueue(entry, -similarity);
            if (accept(entry))
            {
                results.Enqueue(entry, similarity);
            }
        }

        while (candidates.TryDequeue(out var current, out var negated))
        {
            if (results.Count >= ef && results.TryPeek(out _, out var worst) && -negated < worst)
            {
                break;
            }

            foreach (var neighbour in _neighbours[current][level])
            {
                if (!visited.Add(neighbour))
                {
                    continue;
                }

                var similarity = Similarity(query, neighbour);
                if (results.Count < ef || (results.TryPeek(out _, out var worstSoFar) && similarity > worstSoFar))
                {
                    candidates.Enqueue(neighbour, -similarity);
                    if (accept(neighbour))
                    {
                        results.Enqueue(neighbour, similarity);
                        if (results.Count > ef)
                        {
                            results.Dequeue();
                        }
                    }
                }
            }
        }

        var ordered = new List<(int, float)>(results.Count);
        while (results.TryDequeue(out var node, out var similarity))
        {
            ordered.Add((node, similarity));
        }

        ordered.Reverse();
        return ordered;
    }

    /// <summary>
    /// The paper's heuristic (algorithm 4): a candidate is kept only if it is closer to the base than to every neighbour kept
    /// so far, which spreads links across clusters; pruned candidates fill any places left (keepPrunedConnections).
    /// </summary>
    private List<(int Node, float Similarity)> SelectNeighbours(List<(int Node, float Similarity)> candidates, int m)
    {
        var kept = new List<(int Node, float Similarity)>(m);
        var pruned = new List<(int Node, float Similarity)>();
        foreach (var candidate in candidates)
        {
            if (kept.Count >= m)
            {
                break;
            }

            var vector = _vector(candidate.Node).Span;
            var diverse = true;
            foreach (var (node, _) in kept)
            {
                if (Similarity(vector, node) > candidate.Similarity)
                {
                    diverse = false;
                    break;
                }
            }

            (diverse ? kept : pruned).Add(candidate);
        }

        kept.AddRange(pruned.Take(m - kept.Count));
        return kept;
    }

    private void Shrink(int node, int level)
    {
        var vector = _vector(node).Span;
        var list = _neighbours[node][level];
        var scored = new List<(int Node, float Similarity)>(list.Count);
        foreach (var neighbour in list)
        {
            scored.Add((neighbour, Similarity(vector, neighbour)));
        }

        scored.Sort((a, b) => b.Similarity.CompareTo(a.Similarity));
        list.Clear();
        list.AddRange(SelectNeighbours(scored, MaxDegree(level)).Select(x => x.Node));
    }
}
