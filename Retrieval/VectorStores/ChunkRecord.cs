using System.Text.Json;

namespace AspireAi.Retrieval.VectorStores;

/// <summary>
/// One chunk as a vector store holds it. A <see cref="ChunkCollection"/> is scoped to one tenant's collection, so neither
/// appears here: the store adds them to every write and every query.
/// </summary>
public sealed class ChunkRecord
{
    private IReadOnlyDictionary<string, string>? _metadata;

    /// <summary>Stable id: a hash of tenant, collection, document, version and position (re-ingesting rewrites the same ids).</summary>
    public required Guid Id { get; init; }

    public required string DocumentId { get; init; }

    /// <summary>The content hash of the document version this chunk belongs to; only the version the document row names is visible.</summary>
    public required string DocumentVersion { get; init; }

    public required int ChunkIndex { get; init; }

    public required string Text { get; init; }

    /// <summary>The document's metadata as a JSON object (values: strings, numbers, booleans).</summary>
    public required string MetadataJson { get; init; }

    /// <summary>Unit-length embedding; null when a store returns records without vectors.</summary>
    public ReadOnlyMemory<float>? Embedding { get; init; }

    /// <summary>Metadata values as the strings filters compare (a number's JSON text, <c>true</c>/<c>false</c>).</summary>
    public IReadOnlyDictionary<string, string> Metadata => _metadata ??= ParseMetadata(MetadataJson);

    public static IReadOnlyDictionary<string, string> ParseMetadata(string json)
    {
        using var document = JsonDocument.Parse(json);
        var values = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var property in document.RootElement.EnumerateObject())
        {
            values[property.Name] = FilterValue(property.Value);
        }

        return values;
    }

    /// <summary>The string a metadata value is compared as.</summary>
    public static string FilterValue(JsonElement value) =>
        value.ValueKind == JsonValueKind.String ? value.GetString()! : value.GetRawText();

    /// <summary>The id of chunk <paramref name="index"/> of one document version (UUID v8 layout over SHA-256).</summary>
    public static Guid IdFor(string tenant, string collection, string documentId, string version, int index)
    {
        Span<byte> hash = stackalloc byte[32];
        System.Security.Cryptography.SHA256.HashData(
            System.Text.Encoding.UTF8.GetBytes($"{tenant}\n{collection}\n{documentId}\n{version}\n{index}"), hash);
        hash[6] = (byte)((hash[6] & 0x0F) | 0x80);
        hash[8] = (byte)((hash[8] & 0x3F) | 0x80);
        return new Guid(hash[..16], bigEndian: true);
    }
}
