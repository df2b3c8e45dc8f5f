using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Http.Resilience;
using Microsoft.Extensions.Logging;

namespace AspireAi.Retrieval.Tests;

/// <summary>
/// The real Retrieval app in process (its own Program, middleware and hosted services) over a real PostgreSQL database,
/// calling embeddings at <paramref name="embeddingsAddress"/>.
/// </summary>
/// <remarks>Any public type of the Retrieval assembly names its entry point; <c>Program</c> would be ambiguous with Inference's.</remarks>
public sealed class RetrievalHost(string connectionString, string embeddingsAddress, IReadOnlyDictionary<string, string?>? settings = null)
    : WebApplicationFactory<RetrievalOptions>
{
    public const string TenantHeader = "X-AspireAi-Tenant";

    /// <summary>A client whose requests carry <paramref name="tenant"/> as the gateway would set it.</summary>
    public HttpClient ClientFor(string tenant)
    {
        var client = CreateClient();
        client.DefaultRequestHeaders.Add(TenantHeader, tenant);
        return client;
    }

    protected override void ConfigureWebHost(IWebHostBuilder builder)
    {
        builder.UseSetting("ConnectionStrings:retrievaldb", connectionString);
        builder.UseSetting("services:inference:http:0", embeddingsAddress);
        foreach (var (key, value) in settings ?? new Dictionary<string, string?>())
        {
            builder.UseSetting(key, value);
        }

        builder.ConfigureLogging(logging => logging
            .SetMinimumLevel(LogLevel.Warning)
            // Every refused connection of the outage tests would print a retry and a stack trace.
            .AddFilter("Polly", LogLevel.None)
            .AddFilter("Microsoft.Extensions.AI", LogLevel.Error)
            .AddFilter("System.Net.Http.HttpClient", LogLevel.Error));
        builder.ConfigureServices(services =>
            // The standard handler waits 2 s, 4 s, 8 s between retries; tests of an unreachable service need not. The handler
            // comes from ConfigureHttpClientDefaults, whose builder has no name: its options are named "-standard".
            services.Configure<HttpStandardResilienceOptions>("-standard", options =>
            {
                options.Retry.Delay = TimeSpan.FromMilliseconds(10);
                options.Retry.MaxRetryAttempts = 1;
            }));
    }
}
