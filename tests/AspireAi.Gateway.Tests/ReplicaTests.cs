using System.Net;
using System.Net.Http.Json;
using AspireAi.Gateway.Tests.Support;

namespace AspireAi.Gateway.Tests;

/// <summary>Replicas: least outstanding, prefix affinity, retry before the first byte, circuit breaking, a replica killed under load.</summary>
public sealed class ReplicaTests(TestStack stack)
{
    [Fact]
    public async Task One_of_two_real_inference_replicas_killed_under_load_fails_no_request()
    {
        await using var first = InferenceApp.Started(new InferenceApp());
        await using var second = InferenceApp.Started(new InferenceApp());
        await using var gateway = GatewayApp.Start(stack, new Dictionary<string, string?>
        {
            ["Gateway:Deployments:scripted"] = null,
            ["services:inference:http:0"] = first.Address,
            ["services:inference:http:1"] = second.Address,
            ["Gateway:Cache:Enabled"] = "false", // every request must reach a replica
        });
        using var client = await gateway.ClientForNewKeyAsync("replicas-kill");
        await (await client.EmbedAsync("warm up")).JsonAsync(HttpStatusCode.OK);

        // Four clients send 15 requests each; the second replica is stopped once a quarter of them are done.
        var done = 0;
        var killed = new TaskCompletionSource();
        var failures = new System.Collections.Concurrent.ConcurrentBag<string>();
        async Task ClientLoop(int worker)
        {
            for (var i = 0; i < 15; i++)
            {
                using var response = await client.EmbedAsync($"request {worker}.{i} about replicas");
                if (response.StatusCode != HttpStatusCode.OK)
                {
                    failures.Add($"{(int)response.StatusCode}: {await response.Content.ReadAsStringAsync()}");
                }

                if (Interlocked.Increment(ref done) == 15)
                {
                    _ = Task.Run(async () =>
                    {
                        await second.DisposeAsync();
                        killed.SetResult();
                    });
                }
            }
        }

        await Task.WhenAll(Enumerable.Range(0, 4).Select(ClientLoop));
        await killed.Task;
        Assert.Empty(failures);
        // And after the kill, everything still works on the survivor.
        await (await client.EmbedAsync("after the kill")).JsonAsync(HttpStatusCode.OK);
    }

    [Fact]
    public async Task A_replica_that_drops_the_connection_or_answers_503_before_the_first_byte_is_retried_on_another()
    {
        await using var broken = await new ScriptedUpstream("broken") { Behavior = UpstreamBehavior.AbortBeforeHeaders }.StartAsync();
        await using var busy = await new ScriptedUpstream("busy") { Behavior = UpstreamBehavior.Unavailable }.StartAsync();
        await using var healthy = await new ScriptedUpstream("healthy").StartAsync();
        await using var gateway = GatewayApp.Start(stack, new Dictionary<string, string?>
        {
            ["Gateway:Deployments:scripted"] = "http://pool",
            ["services:pool:http:0"] = broken.Address,
            ["services:pool:http:1"] = busy.Address,
            ["services:pool:http:2"] = healthy.Address,
            ["Gateway:Replicas:AffinityPrefixChars"] = "0",
            ["Gateway:Replicas:FailureThreshold"] = "1000", // keep both bad replicas in rotation for this test
        });
        using var client = await gateway.ClientForNewKeyAsync("replicas-retry");
        for (var i = 0; i < 12; i++)
        {
            using var response = await client.PostAsJsonAsync("/v1/chat/completions", new
            {
                model = ScriptedUpstream.Model, stream = i % 2 == 0, messages = new[] { new { role = "user", content = $"retry {i}" } },
            });
            var body = await response.Content.ReadAsStringAsync();
            Assert.True(response.StatusCode == HttpStatusCode.OK, body);
            Assert.Contains("healthy", body);
        }

        Assert.Equal(12, healthy.Answered);
    }

    [Fact]
    public async Task A_failing_replica_circuit_opens_so_it_stops_receiving_requests()
    {
        await using var broken = await new ScriptedUpstream("breaker-broken") { Behavior = UpstreamBehavior.AbortBeforeHeaders }.StartAsync();
        await using var healthy = await new ScriptedUpstream("breaker-healthy").StartAsync();
        await using var gateway = GatewayApp.Start(stack, new Dictionary<string, string?>
        {
            ["Gateway:Deployments:scripted"] = "http://pool",
            ["services:pool:http:0"] = broken.Address,
            ["services:pool:http:1"] = healthy.Address,
            ["Gateway:Replicas:AffinityPrefixChars"] = "0",
            ["Gateway:Replicas:FailureThreshold"] = "2",
            ["Gateway:Replicas:BreakSeconds"] = "60",
        });
        using var client = await gateway.ClientForNewKeyAsync("replicas-breaker");
        for (var i = 0; i < 20; i++)
        {
            await (await client.PostAsJsonAsync("/v1/chat/completions", new
            {
                model = ScriptedUpstream.Model, messages = new[] { new { role = "user", content = $"breaker {i}" } },
            })).JsonAsync(HttpStatusCode.OK);
        }

        // Two failures open the circuit; after that no request is even tried on the broken replica.
        Assert.Equal(2, broken.Received);
        Assert.Equal(20, healthy.Answered);
        Assert.Contains("aspireai_gateway_upstream_retries", await MetricsAsync(gateway));
    }

    [Fact]
    public async Task Requests_sharing_a_prompt_prefix_stick_to_one_replica_while_different_prefixes_spread()
    {
        var replicas = await Task.WhenAll(Enumerable.Range(0, 3).Select(i => new ScriptedUpstream($"aff-{i}").StartAsync()));
        try
        {
            await using var gateway = GatewayApp.Start(stack, new Dictionary<string, string?>
            {
                ["Gateway:Deployments:scripted"] = "http://pool",
                ["services:pool:http:0"] = replicas[0].Address,
                ["services:pool:http:1"] = replicas[1].Address,
                ["services:pool:http:2"] = replicas[2].Address,
                ["Gateway:Replicas:AffinityPrefixChars"] = "200",
            });
            using var client = await gateway.ClientForNewKeyAsync("replicas-affinity");
            async Task<string> Ask(string system, string question)
            {
                var answer = await (await client.PostAsJsonAsync("/v1/chat/completions", new
                {
                    model = ScriptedUpstream.Model,
                    messages = new object[] { new { role = "system", content = system }, new { role = "user", content = question } },
                })).JsonAsync(HttpStatusCode.OK);
                return answer.GetProperty("system_fingerprint").GetString()!;
            }

            // A long shared system prompt (beyond the 200 characters hashed) with different questions: one replica.
            var shared = "You are a meticulous assistant. " + string.Concat(Enumerable.Repeat("Follow the house style guide. ", 10));
            var sticky = new HashSet<string>();
            for (var i = 0; i < 8; i++)
            {
                sticky.Add(await Ask(shared, $"question {i}"));
            }

            Assert.Single(sticky);

            // Sixteen different prompts: rendezvous hashing spreads them over more than one replica.
            var spread = new HashSet<string>();
            for (var i = 0; i < 16; i++)
            {
                spread.Add(await Ask($"System prompt number {i} with its own words.", "same question"));
            }

            Assert.True(spread.Count > 1, "different prefixes all went to one replica");
        }
        finally
        {
            foreach (var replica in replicas)
            {
                await replica.DisposeAsync();
            }
        }
    }

    private static async Task<string> MetricsAsync(GatewayApp gateway)
    {
        using var http = new HttpClient();
        return await http.GetStringAsync(gateway.Address + "/metrics");
    }
}
