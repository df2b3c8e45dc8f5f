using System.Security.Cryptography;
using System.Text.Json;

namespace AspireAi.Gateway.Caching;

/// <summary>
/// Cache keys from requests. Two requests that mean the same get the same key: properties sorted at every level, numbers
/// and strings as parsed, whitespace gone. Fields that do not change the answer (<c>user</c>) are left out.
/// </summary>
internal static class CacheKeys
{
    private static readonly HashSet<string> Ignored = ["user"];

    /// <summary>SHA-256 of the canonical request without <paramref name="alsoIgnore"/>, as lowercase hex.</summary>
    public static string Hash(JsonElement request, params string[] alsoIgnore)
    {
        using var buffer = new MemoryStream();
        using (var writer = new Utf8JsonWriter(buffer))
        {
            WriteCanonical(writer, request, topLevel: true, alsoIgnore);
        }

        return Convert.ToHexStringLower(SHA256.HashData(buffer.GetBuffer().AsSpan(0, (int)buffer.Length)));
    }

    private static void WriteCanonical(Utf8JsonWriter writer, JsonElement element, bool topLevel, string[] alsoIgnore)
    {
        switch (element.ValueKind)
        {
            case JsonValueKind.Object:
                writer.WriteStartObject();
                foreach (var property in element.EnumerateObject().OrderBy(p => p.Name, StringComparer.Ordinal))
                {
                    if (topLevel && (Ignored.Contains(property.Name) || alsoIgnore.Contains(property.Name)))
                    {
                        continue;
                    }

                    writer.WritePropertyName(property.Name);
                    WriteCanonical(writer, property.Value, topLevel: false, alsoIgnore);
                }

                writer.WriteEndObject();
                break;
            case JsonValueKind.Array:
                writer.WriteStartArray();
                foreach (var item in element.EnumerateArray())
                {
                    WriteCanonical(writer, item, topLevel: false, alsoIgnore);
                }

                writer.WriteEndArray();
                break;
            case JsonValueKind.Number:
                // 0, 0.0 and 0e0 are one temperature.
                writer.WriteNumberValue(element.GetDouble());
                break;
            default:
                element.WriteTo(writer);
                break;
        }
    }
}
