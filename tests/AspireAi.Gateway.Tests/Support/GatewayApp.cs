using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;

namespace AspireAi.Gateway.Tests.Support;

/// <summary>
/// A real gateway (its own Program) on a loopback port over the test run's PostgreSQL and Redis, fronting the upstreams of
/// <see cref="TestStack"/> unless <paramref name="extra"/> says otherwise.
/// </summary>
public sealed class GatewayApp(IReadOnlyDictionary<string, string?> settings) : LoopbackApp<GatewayOptions>(settings)
{
    public const string MasterKey = "test-master-key-0123456789";

    public static GatewayApp Start(TestStack stack, IReadOnlyDictionary<string, string?>? extra = null, string? redis = null)
    {
        var settings = new Dictionary<string, string?>(stack.GatewaySettings);
        if (redis is not null)
        {
            settings["ConnectionStrings:redis"] = redis;
        }

        foreach (var (key, value) in extra ?? new Dictionary<string, string?>())
        {
            if (value is null)
            {
                settings.Remove(key); // null removes a default, e.g. a deployment the test does not want
            }
            else
            {
                settings[key] = value;
            }
        }

        return Started(new GatewayApp(settings));
    }

    /// <summary>A client of the gateway sending <paramref name="key"/> as its bearer token (none when null).</summary>
    public HttpClient Client(string? key)
    {
        var client = new HttpClient { BaseAddress = new Uri(Address), Timeout = TimeSpan.FromSeconds(60) };
        if (key is not null)
        {
            client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", key);
        }

        return client;
    }

    public HttpClient Admin() => Client(MasterKey);

    /// <summary>Creates an API key through the admin API; returns (secret, id).</summary>
    public async Task<(string Key, string Id)> CreateKeyAsync(string tenant, object? limits = null, string[]? scopes = null, string[]? models = null)
    {
        using var admin = Admin();
        var response = await admin.PostAsJsonAsync("/admin/keys", new { tenant, name = "test", limits, scopes, models });
        var body = await response.JsonAsync(System.Net.HttpStatusCode.Created);
        return (body.GetProperty("key").GetString()!, body.GetProperty("id").GetString()!);
    }

    public async Task<HttpClient> ClientForNewKeyAsync(string tenant, object? limits = null) => Client((await CreateKeyAsync(tenant, limits)).Key);
}

/// <summary>Small helpers over the HTTP API so that tests read as requests and answers.</summary>
internal static class Api
{
    public static Task<HttpResponseMessage> EmbedAsync(this HttpClient client, string input, string model = TestStack.EmbeddingModel) =>
        client.PostAsJsonAsync("/v1/embeddings", new { model, input });

    public static string? Header(this HttpResponseMessage response, string name) =>
        response.Headers.TryGetValues(name, out var values) ? values.FirstOrDefault() : null;
}
