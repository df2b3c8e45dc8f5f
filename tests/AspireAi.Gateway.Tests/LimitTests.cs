using System.Net;
using AspireAi.Gateway.Tests.Support;

namespace AspireAi.Gateway.Tests;

/// <summary>Per-key request and token rates and budgets, in Redis, shared by gateway replicas; OpenAI's headers.</summary>
public sealed class LimitTests(TestStack stack)
{
    [Fact]
    public async Task Over_the_request_rate_a_key_gets_429_with_retry_after_and_openai_headers()
    {
        using var client = await stack.Gateway.ClientForNewKeyAsync("limits-rpm", new { requests_per_minute = 3 });
        for (var i = 0; i < 3; i++)
        {
            using var ok = await client.EmbedAsync($"rate {i}");
            Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
            Assert.Equal("3", ok.Header("x-ratelimit-limit-requests"));
            Assert.Equal((2 - i).ToString(), ok.Header("x-ratelimit-remaining-requests"));
            Assert.NotNull(ok.Header("x-ratelimit-reset-requests"));
        }

        using var refused = await client.EmbedAsync("one too many");
        var error = await refused.ErrorAsync(HttpStatusCode.TooManyRequests);
        Assert.Equal("rate_limit_exceeded", error.GetProperty("code").GetString());
        Assert.Equal("rate_limit_error", error.GetProperty("type").GetString());
        Assert.Equal("0", refused.Header("x-ratelimit-remaining-requests"));
        var retryAfter = int.Parse(refused.Headers.RetryAfter!.ToString());
        Assert.InRange(retryAfter, 1, 120);

        // A refused request is not counted, and other keys are not affected.
        using var other = await stack.Gateway.ClientForNewKeyAsync("limits-rpm", new { requests_per_minute = 3 });
        Assert.Equal(HttpStatusCode.OK, (await other.EmbedAsync("other key")).StatusCode);
    }

    [Fact]
    public async Task Two_gateway_replicas_share_one_count_through_redis()
    {
        await using var second = GatewayApp.Start(stack);
        var (key, _) = await stack.Gateway.CreateKeyAsync("limits-shared", limits: new { requests_per_minute = 4 });
        using var a = stack.Gateway.Client(key);
        using var b = second.Client(key);
        var statuses = new List<HttpStatusCode>();
        for (var i = 0; i < 3; i++)
        {
            statuses.Add((await a.EmbedAsync($"a{i}")).StatusCode);
            statuses.Add((await b.EmbedAsync($"b{i}")).StatusCode);
        }

        Assert.Equal([HttpStatusCode.OK, HttpStatusCode.OK, HttpStatusCode.OK, HttpStatusCode.OK, HttpStatusCode.TooManyRequests, HttpStatusCode.TooManyRequests], statuses);
    }

    [Fact]
    public async Task Tokens_per_minute_count_the_usage_of_responses()
    {
        // all-MiniLM counts [CLS] and [SEP]: "tokens tokens tokens ..." of 40 words is 42 tokens, past the limit of 30.
        using var client = await stack.Gateway.ClientForNewKeyAsync("limits-tpm", new { tokens_per_minute = 30 });
        using var first = await client.EmbedAsync(string.Join(' ', Enumerable.Repeat("tokens", 40)));
        Assert.Equal(HttpStatusCode.OK, first.StatusCode);
        Assert.Equal("30", first.Header("x-ratelimit-limit-tokens"));
        Assert.Equal("30", first.Header("x-ratelimit-remaining-tokens")); // nothing used before this one

        using var second = await client.EmbedAsync("short");
        var error = await second.ErrorAsync(HttpStatusCode.TooManyRequests);
        Assert.Contains("tokens", error.GetProperty("message").GetString());
        Assert.Equal("0", second.Header("x-ratelimit-remaining-tokens"));
        Assert.NotNull(second.Headers.RetryAfter);
    }

    [Fact]
    public async Task A_used_up_token_budget_refuses_with_insufficient_quota_until_the_period_ends()
    {
        using var client = await stack.Gateway.ClientForNewKeyAsync("limits-budget", new { token_budget = 20, budget_period = "day" });
        Assert.Equal(HttpStatusCode.OK, (await client.EmbedAsync(string.Join(' ', Enumerable.Repeat("budget", 25)))).StatusCode);
        using var refused = await client.EmbedAsync("more");
        var error = await refused.ErrorAsync(HttpStatusCode.TooManyRequests);
        Assert.Equal("insufficient_quota", error.GetProperty("code").GetString());
        var retryAfter = int.Parse(refused.Headers.RetryAfter!.ToString());
        Assert.InRange(retryAfter, 1, 86_400); // the end of the UTC day
        Assert.Equal("0", refused.Header("x-aspireai-budget-remaining-tokens"));
    }

    [Fact]
    public async Task Retrieval_and_agents_routes_count_requests_too()
    {
        using var client = await stack.Gateway.ClientForNewKeyAsync("limits-proxy", new { requests_per_minute = 2 });
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/v1/collections")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/v1/agents")).StatusCode);
        using var refused = await client.GetAsync("/v1/collections");
        await refused.ErrorAsync(HttpStatusCode.TooManyRequests);
        Assert.NotNull(refused.Headers.RetryAfter);
    }
}
