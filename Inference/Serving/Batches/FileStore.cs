using System.Collections.Concurrent;

namespace AspireAi.Inference.Serving.Batches;

/// <summary>A file of the OpenAI Files API (batch input, output and error files).</summary>
internal sealed record StoredFile(string Id, string Filename, string Purpose, long CreatedAt, byte[] Content)
{
    public object ToJson() => new { id = Id, @object = "file", bytes = Content.Length, created_at = CreatedAt, filename = Filename, purpose = Purpose };
}

/// <summary>
/// Files in memory: Inference keeps nothing persistent (DESIGN.md), so batch inputs and results live as long as the replica.
/// Bounded by the upload limit per file.
/// </summary>
internal sealed class FileStore
{
    private readonly ConcurrentDictionary<string, StoredFile> _files = new(StringComparer.Ordinal);

    public StoredFile Add(string filename, string purpose, byte[] content)
    {
        var file = new StoredFile("file-" + Guid.NewGuid().ToString("N")[..24], filename, purpose, DateTimeOffset.UtcNow.ToUnixTimeSeconds(), content);
        _files[file.Id] = file;
        return file;
    }

    public StoredFile? Get(string id) => _files.GetValueOrDefault(id);

    public bool Delete(string id) => _files.TryRemove(id, out _);

    public IEnumerable<StoredFile> All => _files.Values.OrderByDescending(f => f.CreatedAt);
}
