namespace AspireAi.Retrieval.VectorStores;

/// <summary>The vector store in use: Qdrant when <c>ConnectionStrings:qdrant</c> is set, else the embedded store.</summary>
public interface IChunkStore
{
    /// <summary>"qdrant" or "embedded", for logs and the health report.</summary>
    string Name { get; }

    /// <summary>The chunks of one tenant's collection, whose vectors come from <paramref name="embeddingModel"/>.</summary>
    ChunkCollection Collection(string tenant, string collection, string embeddingModel);
}
