using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using System.Text.Json.Serialization;
using AspireAi.ServiceDefaults;
using Microsoft.Extensions.Options;

namespace AspireAi.Agents.Tools.Retrieval;

/// <summary>One search hit of Retrieval's <c>POST /v1/collections/{c}/search</c>.</summary>
public sealed record SearchHit(
    [property: JsonPropertyName("document_id")] string DocumentId,
    [property: JsonPropertyName("chunk_index")] int ChunkIndex,
    [property: JsonPropertyName("text")] string Text,
    [property: JsonPropertyName("score")] double Score,
    [property: JsonPropertyName("metadata")] JsonElement Metadata);

/// <summary>Retrieval's API as the agents use it, always on behalf of the run's tenant (<c>X-AspireAi-Tenant</c>).</summary>
public sealed class RetrievalClient(IHttpClientFactory httpClients, IOptions<AgentsOptions> options)
{
    public const string HttpClientName = "retrieval";

    public async Task<IReadOnlyList<SearchHit>> SearchAsync(string tenant, string collection, string query, int topK, CancellationToken ct)
    {
        using var request = Request(HttpMethod.Post, tenant, $"/v1/collections/{Uri.EscapeDataString(collection)}/search");
        request.Content = JsonContent.Create(new { query, top_k = topK, mode = "hybrid" });
        using var response = await Client().SendAsync(request, ct);
        if (response.StatusCode == HttpStatusCode.NotFound)
        {
            throw new ToolException($"The collection '{collection}' does not exist.");
        }

        await EnsureSuccessAsync(response, "search", ct);
        var body = await response.Content.ReadFromJsonAsync<JsonElement>(ct);
        return body.GetProperty("results").Deserialize<List<SearchHit>>() ?? [];
    }

    public async Task EnsureCollectionAsync(string tenant, string collection, CancellationToken ct)
    {
        using var request = Request(HttpMethod.Put, tenant, $"/v1/collections/{Uri.EscapeDataString(collection)}");
        using var response = await Client().SendAsync(request, ct);
        await EnsureSuccessAsync(response, "create collection", ct);
    }

    public async Task IngestAsync(string tenant, string collection, string text, object metadata, CancellationToken ct)
    {
        using var request = Request(HttpMethod.Post, tenant, $"/v1/collections/{Uri.EscapeDataString(collection)}/documents");
        request.Content = JsonContent.Create(new { text, content_type = "text/plain", metadata });
        using var response = await Client().SendAsync(request, ct);
        await EnsureSuccessAsync(response, "ingest", ct);
    }

    private HttpClient Client() => httpClients.CreateClient(HttpClientName);

    private HttpRequestMessage Request(HttpMethod method, string tenant, string path)
    {
        var request = new HttpRequestMessage(method, new Uri(new Uri(options.Value.RetrievalEndpoint), path));
        request.Headers.Add(TenantHeaders.TenantHeader, tenant);
        return request;
    }

    private static async Task EnsureSuccessAsync(HttpResponseMessage response, string what, CancellationToken ct)
    {
        if (!response.IsSuccessStatusCode)
        {
            var body = await response.Content.ReadAsStringAsync(ct);
            throw new ToolException($"Retrieval refused the {what} ({(int)response.StatusCode}): {body}");
        }
    }
}
