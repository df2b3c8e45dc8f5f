using Microsoft.AspNetCore.Hosting;
using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace AspireAi.IntegrationTests;

/// <summary>
/// ServiceDefaults' resilience policy, exercised through a real HttpClient from <c>AddServiceDefaults()</c> against a real
/// Kestrel server that counts what reaches it: a POST that got a response is never sent twice (it may have generated tokens
/// or written state); idempotent requests and refusals that did no work are retried.
/// </summary>
public sealed class ResilienceTests : IAsyncLifetime
{
    private readonly Dictionary<string, int> _hits = [];
    private WebApplication _server = null!;
    private IHost _client = null!;

    public async ValueTask InitializeAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        _server = builder.Build();
        _server.Map("/{status:int}", (int status, HttpContext context) =>
        {
            lock (_hits)
            {
                var key = $"{context.Request.Method} {status}";
                _hits[key] = _hits.GetValueOrDefault(key) + 1;
            }

            return Results.StatusCode(status);
        });
        await _server.StartAsync();

        var clientBuilder = Host.CreateApplicationBuilder();
        clientBuilder.AddServiceDefaults();
        _client = clientBuilder.Build();
    }

    [Theory]
    [InlineData("POST", 500, 1)]
    [InlineData("POST", 502, 1)]
    [InlineData("GET", 500, 4)]   // the standard handler: one attempt and three retries
    [InlineData("DELETE", 502, 4)]
    [InlineData("POST", 503, 4)]  // a full queue refused it before doing any work
    [InlineData("POST", 429, 4)]
    [InlineData("GET", 400, 1)]   // the caller's mistake: retrying cannot help
    public async Task Retries_only_what_is_safe_to_send_again(string method, int status, int expectedAttempts)
    {
        var http = _client.Services.GetRequiredService<IHttpClientFactory>().CreateClient();
        var address = _server.Urls.Single();
        using var response = await http.SendAsync(
            new HttpRequestMessage(new HttpMethod(method), $"{address}/{status}"), TestContext.Current.CancellationToken);

        Assert.Equal((HttpStatusCode)status, response.StatusCode);
        lock (_hits)
        {
            Assert.Equal(expectedAttempts, _hits[$"{method} {status}"]);
        }
    }

    public async ValueTask DisposeAsync()
    {
        _client.Dispose();
        await _server.DisposeAsync();
    }
}
