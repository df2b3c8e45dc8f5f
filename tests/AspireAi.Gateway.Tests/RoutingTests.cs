using System.Net;
using System.Net.Http.Json;
using AspireAi.Gateway.Tests.Support;

namespace AspireAi.Gateway.Tests;

/// <summary>The model router: models learnt from each deployment, merged, routed by <c>model</c>; aliases, fallbacks, 404.</summary>
public sealed class RoutingTests(TestStack stack)
{
    [Fact]
    public async Task Models_of_every_deployment_are_merged_and_each_request_goes_to_the_deployment_serving_its_model()
    {
        using var client = await stack.Gateway.ClientForNewKeyAsync("routing");
        var models = await (await client.GetAsync("/v1/models")).JsonAsync(HttpStatusCode.OK);
        var ids = models.GetProperty("data").EnumerateArray().Select(m => m.GetProperty("id").GetString()).ToList();
        Assert.Contains(TestStack.EmbeddingModel, ids); // from the real Inference replicas
        Assert.Contains(ScriptedUpstream.Model, ids);   // from the scripted deployment
        await (await client.GetAsync($"/v1/models/{TestStack.EmbeddingModel}")).JsonAsync(HttpStatusCode.OK);
        await (await client.GetAsync("/v1/models/nope")).ErrorAsync(HttpStatusCode.NotFound, "model");

        // The real Inference app embeds; its answer reaches the client unchanged, usage included.
        var embedded = await (await client.EmbedAsync("The gateway routes by model.")).JsonAsync(HttpStatusCode.OK);
        Assert.Equal(384, embedded.GetProperty("data")[0].GetProperty("embedding").GetArrayLength());
        Assert.True(embedded.GetProperty("usage").GetProperty("prompt_tokens").GetInt32() > 2);

        var marker = "routing " + Guid.NewGuid();
        var chat = await (await client.PostAsJsonAsync("/v1/chat/completions", new
        {
            model = ScriptedUpstream.Model,
            messages = new[] { new { role = "user", content = marker } },
        })).JsonAsync(HttpStatusCode.OK);
        Assert.Equal(ScriptedUpstream.Content(5), chat.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString());
        Assert.Contains(stack.Scripted, s => s.Saw(marker));
    }

    [Fact]
    public async Task An_unknown_model_is_404_model_not_found_without_reaching_any_upstream()
    {
        using var client = await stack.Gateway.ClientForNewKeyAsync("routing-404");
        var marker = "unknown " + Guid.NewGuid();
        var error = await (await client.PostAsJsonAsync("/v1/chat/completions", new
        {
            model = "gpt-17",
            messages = new[] { new { role = "user", content = marker } },
        })).ErrorAsync(HttpStatusCode.NotFound, "model");
        Assert.Equal("model_not_found", error.GetProperty("code").GetString());
        Assert.Contains("gpt-17", error.GetProperty("message").GetString());
        Assert.DoesNotContain(stack.Scripted, s => s.Saw(marker));
    }

    [Fact]
    public async Task A_deployment_that_starts_just_after_the_gateway_listed_it_is_found_by_the_next_request()
    {
        // The replica's port is chosen now, but nothing listens on it yet: the gateway's listings of the deployment fail.
        await using var late = new InferenceApp();
        await using var gateway = GatewayApp.Start(stack, new Dictionary<string, string?>
        {
            ["Gateway:Deployments:scripted"] = null,
            ["services:inference:http:0"] = late.Address,
            ["services:inference:http:1"] = late.Address, // the stack's second replica replaced too
        });
        using var client = await gateway.ClientForNewKeyAsync("routing-late");
        var before = await (await client.GetAsync("/v1/models")).JsonAsync(HttpStatusCode.OK);
        Assert.DoesNotContain(TestStack.EmbeddingModel, before.GetProperty("data").EnumerateArray().Select(m => m.GetProperty("id").GetString()));

        // The replica comes up within about a second of that failed listing. The next request for its model must not be
        // answered 404 from the stale list: it waits out the rest of the second, reads the lists again and is served.
        late.Start();
        var embedded = await (await client.EmbedAsync("found after a late start")).JsonAsync(HttpStatusCode.OK);
        Assert.Equal(384, embedded.GetProperty("data")[0].GetProperty("embedding").GetArrayLength());
    }

    [Fact]
    public async Task A_request_that_arrives_while_the_first_listing_runs_waits_for_it()
    {
        // The deployment lists its models only after 1.5 s, so the gateway's first listing is still running when the
        // request comes. It must wait for that listing rather than answer 404 from the empty catalog.
        await using var slow = await new ScriptedUpstream("slow") { ModelsDelay = TimeSpan.FromSeconds(1.5) }.StartAsync();
        await using var gateway = GatewayApp.Start(stack, new Dictionary<string, string?>
        {
            ["Gateway:Deployments:scripted"] = "http://slow",
            ["services:slow:http:0"] = slow.Address,
        });
        using var client = await gateway.ClientForNewKeyAsync("routing-first-listing");
        var chat = await (await client.PostAsJsonAsync("/v1/chat/completions", new
        {
            model = ScriptedUpstream.Model,
            messages = new[] { new { role = "user", content = "during the first listing" } },
        })).JsonAsync(HttpStatusCode.OK);
        Assert.Equal(ScriptedUpstream.Content(5), chat.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString());
    }

    [Fact]
    public async Task Aliases_are_listed_and_rewritten_and_fallbacks_take_over_when_no_replica_can()
    {
        await using var gateway = GatewayApp.Start(stack, new Dictionary<string, string?>
        {
            ["Gateway:Models:Aliases:text-embedding-3-small"] = TestStack.EmbeddingModel,
            ["Gateway:Models:Aliases:gpt-4o-mini"] = ScriptedUpstream.Model,
        });
        using var client = await gateway.ClientForNewKeyAsync("routing-alias");
        var models = await (await client.GetAsync("/v1/models")).JsonAsync(HttpStatusCode.OK);
        var ids = models.GetProperty("data").EnumerateArray().Select(m => m.GetProperty("id").GetString()).ToList();
        Assert.Contains("text-embedding-3-small", ids);

        var embedded = await (await client.EmbedAsync("alias", model: "text-embedding-3-small")).JsonAsync(HttpStatusCode.OK);
        Assert.Equal(TestStack.EmbeddingModel, embedded.GetProperty("model").GetString()); // the upstream saw the real id

        var marker = "alias " + Guid.NewGuid();
        await (await client.PostAsJsonAsync("/v1/chat/completions", new
        {
            model = "gpt-4o-mini",
            messages = new[] { new { role = "user", content = marker } },
        })).JsonAsync(HttpStatusCode.OK);
        var forwarded = stack.Scripted.SelectMany(s => s.Requests).Single(r => r.Body.GetRawText().Contains(marker, StringComparison.Ordinal));
        Assert.Equal(ScriptedUpstream.Model, forwarded.Body.GetProperty("model").GetString());
    }

    [Fact]
    public async Task A_model_whose_only_replica_refuses_falls_back_to_the_configured_model()
    {
        // A deployment of its own whose one replica answers 503 to every completion (its model list still answers).
        await using var primary = await new ScriptedUpstream("primary") { Behavior = UpstreamBehavior.Unavailable }.StartAsync();
        await using var gateway = GatewayApp.Start(stack, new Dictionary<string, string?>
        {
            ["Gateway:Deployments:scripted"] = null,
            ["Gateway:Deployments:primary"] = "http://primary",
            ["services:primary:http:0"] = primary.Address,
            ["Gateway:Models:Fallbacks:" + ScriptedUpstream.Model + ":0"] = TestStack.EmbeddingModel,
        });
        using var client = await gateway.ClientForNewKeyAsync("routing-fallback");
        var response = await client.PostAsJsonAsync("/v1/chat/completions", new
        {
            model = ScriptedUpstream.Model,
            messages = new[] { new { role = "user", content = "fallback" } },
        });
        // The fallback model is Inference's embedding model, which its chat endpoint refuses in its own words ("This server
        // serves …", not the gateway's "GET /v1/models lists …"): that answer proves the request went to Inference.
        var body = await response.Content.ReadAsStringAsync();
        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        Assert.Contains("This server serves", body);

        // Without a fallback, the one replica's 503 is the answer.
        await using var plain = GatewayApp.Start(stack, new Dictionary<string, string?>
        {
            ["Gateway:Deployments:scripted"] = null,
            ["Gateway:Deployments:primary"] = "http://primary",
            ["services:primary:http:0"] = primary.Address,
        });
        using var plainClient = await plain.ClientForNewKeyAsync("routing-fallback");
        var refused = await plainClient.PostAsJsonAsync("/v1/chat/completions", new
        {
            model = ScriptedUpstream.Model,
            messages = new[] { new { role = "user", content = "fallback" } },
        });
        Assert.Equal(HttpStatusCode.ServiceUnavailable, refused.StatusCode);
    }
}
