using System.Net;
using AspireAi.Gateway.Tests.Support;

namespace AspireAi.Gateway.Tests;

/// <summary>Usage records: written in batches while running, and whatever is pending is flushed on shutdown.</summary>
public sealed class UsageTests(TestStack stack)
{
    [Fact]
    public async Task Every_request_is_recorded_with_tokens_latency_status_and_cache_result()
    {
        var (key, id) = await stack.Gateway.CreateKeyAsync("usage-rows");
        using var client = stack.Gateway.Client(key);
        var input = "usage " + Guid.NewGuid();
        await (await client.EmbedAsync(input)).JsonAsync(HttpStatusCode.OK);
        await (await client.EmbedAsync(input)).JsonAsync(HttpStatusCode.OK); // the exact cache answers
        await (await client.EmbedAsync("x", model: "missing-model")).ErrorAsync(HttpStatusCode.NotFound);

        var rows = await UsageRows.WaitForAsync(stack.GatewayDb, id, 3);
        Assert.All(rows, r => Assert.Equal("usage-rows", r.Tenant));
        Assert.Equal(("/v1/embeddings", TestStack.EmbeddingModel, 200, "miss"), (rows[0].Endpoint, rows[0].Model, rows[0].Status, rows[0].Cache));
        Assert.True(rows[0].Prompt > 2);
        Assert.True(rows[0].LatencyMs > 0);
        Assert.Equal((200, "hit", 0), (rows[1].Status, rows[1].Cache, rows[1].Prompt)); // nothing generated, nothing billed
        Assert.Equal(404, rows[2].Status);
    }

    [Fact]
    public async Task Records_still_pending_when_the_gateway_stops_are_written_before_it_exits()
    {
        // A flush period far longer than the test: only the shutdown drain can write these rows.
        var gateway = GatewayApp.Start(stack, new Dictionary<string, string?> { ["Gateway:Usage:FlushSeconds"] = "3600" });
        var (key, id) = await gateway.CreateKeyAsync("usage-shutdown");
        using (var client = gateway.Client(key))
        {
            for (var i = 0; i < 5; i++)
            {
                await (await client.EmbedAsync($"pending {i} {Guid.NewGuid()}")).JsonAsync(HttpStatusCode.OK);
            }
        }

        Assert.Empty(await UsageRows.ReadAsync(stack.GatewayDb, id));
        await gateway.DisposeAsync();
        Assert.Equal(5, (await UsageRows.ReadAsync(stack.GatewayDb, id)).Count);
    }
}
