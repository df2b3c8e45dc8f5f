using System.Net;
using System.Net.Http.Json;
using AspireAi.Gateway.Tests.Support;

namespace AspireAi.Gateway.Tests;

/// <summary>The exact response cache (Redis): deterministic requests only, per tenant, streams replayed whole.</summary>
public sealed class CacheTests(TestStack stack)
{
    [Fact]
    public async Task Deterministic_requests_are_answered_from_cache_the_second_time_and_only_for_the_same_tenant()
    {
        await using var upstream = await new ScriptedUpstream("cache").StartAsync();
        await using var gateway = GatewayApp.Start(stack, new Dictionary<string, string?>
        {
            ["Gateway:Deployments:scripted"] = "http://cache",
            ["services:cache:http:0"] = upstream.Address,
        });
        using var a = await gateway.ClientForNewKeyAsync("cache-a");
        using var a2 = await gateway.ClientForNewKeyAsync("cache-a");
        using var b = await gateway.ClientForNewKeyAsync("cache-b");
        var question = "cached " + Guid.NewGuid();
        object Request(double temperature) => new
        {
            model = ScriptedUpstream.Model, temperature, messages = new[] { new { role = "user", content = question } },
        };

        using var first = await a.PostAsJsonAsync("/v1/chat/completions", Request(0));
        Assert.Equal("miss", first.Header("x-aspireai-cache"));
        var firstBody = await first.Content.ReadAsStringAsync();

        using var second = await a2.PostAsJsonAsync("/v1/chat/completions", Request(0.0)); // another key of the same tenant
        Assert.Equal("hit", second.Header("x-aspireai-cache"));
        Assert.Equal(firstBody, await second.Content.ReadAsStringAsync());
        Assert.Equal(1, upstream.Answered);

        using var otherTenant = await b.PostAsJsonAsync("/v1/chat/completions", Request(0));
        Assert.Equal("miss", otherTenant.Header("x-aspireai-cache"));
        Assert.NotEqual(firstBody, await otherTenant.Content.ReadAsStringAsync()); // a fresh answer (its id differs)

        // Sampling: never cached, no header.
        using var sampled = await a.PostAsJsonAsync("/v1/chat/completions", Request(0.7));
        Assert.Null(sampled.Header("x-aspireai-cache"));
        using var sampledAgain = await a.PostAsJsonAsync("/v1/chat/completions", Request(0.7));
        Assert.Null(sampledAgain.Header("x-aspireai-cache"));
        Assert.Equal(4, upstream.Answered);
    }

    [Fact]
    public async Task Embeddings_are_cached_and_the_key_ignores_property_order_and_the_user_field()
    {
        using var client = await stack.Gateway.ClientForNewKeyAsync("cache-embeddings");
        var input = "embedding cache " + Guid.NewGuid();
        using var first = await client.PostAsync("/v1/embeddings", Json($$"""{"model":"all-MiniLM-L6-v2","input":"{{input}}","user":"u1"}"""));
        Assert.Equal("miss", first.Header("x-aspireai-cache"));
        using var second = await client.PostAsync("/v1/embeddings", Json($$"""{ "input" : "{{input}}", "user":"u2", "model":"all-MiniLM-L6-v2" }"""));
        Assert.Equal("hit", second.Header("x-aspireai-cache"));
        Assert.Equal(await first.Content.ReadAsStringAsync(), await second.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task A_deterministic_stream_is_cached_once_complete_and_replayed_as_the_same_events()
    {
        using var client = await stack.Gateway.ClientForNewKeyAsync("cache-stream");
        var request = new
        {
            model = ScriptedUpstream.Model, stream = true, seed = 7, messages = new[] { new { role = "user", content = "stream " + Guid.NewGuid() } },
        };
        using var first = await client.PostAsJsonAsync("/v1/chat/completions", request);
        Assert.Equal("miss", first.Header("x-aspireai-cache"));
        var events = await first.Content.ReadAsStringAsync();

        using var replay = await client.PostAsJsonAsync("/v1/chat/completions", request);
        Assert.Equal("hit", replay.Header("x-aspireai-cache"));
        Assert.Equal("text/event-stream", replay.Content.Headers.ContentType?.MediaType);
        Assert.Equal(events, await replay.Content.ReadAsStringAsync());
        Assert.EndsWith("data: [DONE]\n\n", events);
    }

    private static StringContent Json(string body) => new(body, System.Text.Encoding.UTF8, "application/json");
}
