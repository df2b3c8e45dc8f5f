using System.Collections.Concurrent;
using Microsoft.Extensions.Options;

namespace AspireAi.Retrieval.VectorStores.Embedded;

/// <summary>The embedded store's in-memory indexes, one per tenant's collection, created with the first vector they get.</summary>
internal sealed class EmbeddedIndexes(IOptions<RetrievalOptions> options)
{
    private readonly ConcurrentDictionary<(string Tenant, string Collection), VectorIndex> _indexes = new();

    public VectorIndex? Find(string tenant, string collection) => _indexes.GetValueOrDefault((tenant, collection));

    public VectorIndex GetOrCreate(string tenant, string collection, int dimensions)
    {
        var index = _indexes.GetOrAdd((tenant, collection), _ => new VectorIndex(dimensions, options.Value));
        return index.Dimensions == dimensions
            ? index
            : throw new InvalidOperationException(
                $"Collection '{collection}' holds {index.Dimensions}-dimensional vectors; a {dimensions}-dimensional one cannot join them.");
    }

    public void Remove(string tenant, string collection) => _indexes.TryRemove((tenant, collection), out _);

    public IEnumerable<VectorIndex> All => _indexes.Values;
}
