using System.Text.Json;
using Microsoft.Extensions.AI;

namespace AspireAi.Agents.Storage;

/// <summary>The JSON options for everything this service stores or sends: snake_case names as written on the records,
/// and Microsoft.Extensions.AI's resolver so that <c>ChatMessage</c> and its contents round-trip.</summary>
internal static class Json
{
    public static readonly JsonSerializerOptions Options = new(AIJsonUtilities.DefaultOptions)
    {
        DefaultIgnoreCondition = System.Text.Json.Serialization.JsonIgnoreCondition.Never,
        WriteIndented = false,
        // jsonb keeps keys in its own order, so a stored ChatMessage's "$type" is not always first when read back.
        AllowOutOfOrderMetadataProperties = true,
    };

    public static string Serialize<T>(T value) => JsonSerializer.Serialize(value, Options);

    public static T Deserialize<T>(string json) => JsonSerializer.Deserialize<T>(json, Options)!;

    public static JsonElement Element<T>(T value) => JsonSerializer.SerializeToElement(value, Options);
}
