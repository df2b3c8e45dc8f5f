using System.Net;
using System.Net.Http.Json;
using System.Text.Json;

namespace AspireAi.Retrieval.Tests;

/// <summary>Small helpers over the HTTP API so that tests read as requests and answers.</summary>
internal static class Api
{
    public static Task<HttpResponseMessage> CreateCollectionAsync(this HttpClient client, string name) =>
        client.PutAsync($"/v1/collections/{name}", null);

    public static Task<HttpResponseMessage> IngestAsync(this HttpClient client, string collection, object document) =>
        client.PostAsJsonAsync($"/v1/collections/{collection}/documents", document);

    public static async Task<JsonElement[]> SearchAsync(this HttpClient client, string collection, string query, string mode = "hybrid",
        int topK = 5, object? filter = null)
    {
        var response = await client.PostAsJsonAsync($"/v1/collections/{collection}/search", new { query, mode, top_k = topK, filter });
        var body = await response.JsonAsync(HttpStatusCode.OK);
        return [.. body.GetProperty("results").EnumerateArray()];
    }

    public static string Text(this JsonElement result) => result.GetProperty("text").GetString()!;

    public static string DocumentId(this JsonElement result) => result.GetProperty("document_id").GetString()!;
}
