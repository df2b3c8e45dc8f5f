using System.Net;
using System.Net.Http.Json;
using AspireAi.Gateway.Tests.Support;

namespace AspireAi.Gateway.Tests;

/// <summary>The opt-in semantic cache: conversations embedded by the real all-MiniLM-L6-v2, per tenant, with a threshold.</summary>
public sealed class SemanticCacheTests(TestStack stack)
{
    [Fact]
    public async Task A_paraphrased_question_is_answered_from_cache_an_unrelated_one_and_another_tenant_are_not()
    {
        await using var upstream = await new ScriptedUpstream("semantic").StartAsync();
        await using var gateway = GatewayApp.Start(stack, new Dictionary<string, string?>
        {
            ["Gateway:Deployments:scripted"] = "http://semantic",
            ["services:semantic:http:0"] = upstream.Address,
            ["Gateway:SemanticCache:Enabled"] = "true",
            ["Gateway:SemanticCache:Threshold"] = "0.9",
        });
        using var a = await gateway.ClientForNewKeyAsync("semantic-a");
        using var b = await gateway.ClientForNewKeyAsync("semantic-b");
        async Task<HttpResponseMessage> Ask(HttpClient client, string question) => await client.PostAsJsonAsync("/v1/chat/completions", new
        {
            model = ScriptedUpstream.Model, temperature = 0.8, messages = new[] { new { role = "user", content = question } },
        });

        using var first = await Ask(a, "How do I reset my password?");
        Assert.Equal("miss", first.Header("x-aspireai-cache"));
        using var paraphrase = await Ask(a, "How can I reset my password?");
        Assert.Equal("semantic-hit", paraphrase.Header("x-aspireai-cache"));
        Assert.Equal(await first.Content.ReadAsStringAsync(), await paraphrase.Content.ReadAsStringAsync());

        using var unrelated = await Ask(a, "What is the boiling point of water at sea level?");
        Assert.Equal("miss", unrelated.Header("x-aspireai-cache"));
        using var otherTenant = await Ask(b, "How can I reset my password?");
        Assert.Equal("miss", otherTenant.Header("x-aspireai-cache"));
        Assert.Equal(3, upstream.Answered);
    }
}
