using System.Net.Http.Headers;
using System.Net.Http.Json;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.Extensions.Logging;

namespace AspireAi.Agents.Tests;

/// <summary>
/// The real gateway (its own Program) on a loopback port over PostgreSQL and Redis, fronting the services named in
/// <paramref name="settings"/> (<c>services:agents</c>, <c>services:retrieval</c>, …) as it does in production.
/// </summary>
public sealed class GatewayHost(IReadOnlyDictionary<string, string?> settings) : WebApplicationFactory<AspireAi.Gateway.GatewayOptions>
{
    public const string MasterKey = "agents-e2e-master-key-0123456789";

    public string Address { get; private set; } = "";

    public GatewayHost Start()
    {
        Address = this.StartOnAnyPort();
        return this;
    }

    /// <summary>A client of a new API key of <paramref name="tenant"/>, created through the admin API.</summary>
    public async Task<HttpClient> ClientForNewKeyAsync(string tenant) => Client(await CreateKeyAsync(tenant));

    /// <summary>A new API key of <paramref name="tenant"/>, created through the admin API.</summary>
    public async Task<string> CreateKeyAsync(string tenant)
    {
        using var admin = Client(MasterKey);
        var created = await (await admin.PostAsJsonAsync("/admin/keys", new { tenant, name = "agents-e2e" })).JsonAsync(System.Net.HttpStatusCode.Created);
        return created.GetProperty("key").GetString()!;
    }

    private HttpClient Client(string key)
    {
        var client = new HttpClient { BaseAddress = new Uri(Address), Timeout = TimeSpan.FromSeconds(90) };
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", key);
        return client;
    }

    protected override void ConfigureWebHost(IWebHostBuilder builder)
    {
        builder.UseSetting("Gateway:MasterKey", MasterKey);
        builder.UseSetting("Gateway:Usage:FlushSeconds", "0.2");
        foreach (var (key, value) in settings)
        {
            builder.UseSetting(key, value);
        }

        builder.ConfigureLogging(logging => logging.SetMinimumLevel(LogLevel.Warning).AddFilter("Polly", LogLevel.None)
            .AddFilter("Yarp", LogLevel.Error).AddFilter("System.Net.Http.HttpClient", LogLevel.Error));
    }
}
