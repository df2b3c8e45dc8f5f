using System.Net.Http.Json;
using System.Text.Json.Nodes;
using AspireAi.Inference.Tests.Support;

namespace AspireAi.Inference.Tests.Serving;

/// <summary><c>serve --kv-offload-tokens</c>: the tier behind the HTTP API, its hits in <c>cached_tokens</c> and on <c>/metrics</c>.</summary>
public sealed class KvOffloadServingTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Prefix_evicted_to_the_host_is_reported_as_cached_and_in_the_offload_metrics()
    {
        using var temp = new TempDirectory();
        var path = temp.File("tiny.gguf");
        new TinyGgufModel { Vocabulary = 64, Context = 128, Seed = 11 }.CreateWriter().WriteTo(path);
        // A one-sequence device cache (128 tokens) and room for 32 blocks on the host. Its own model name: meters are
        // process-wide, and other tests' engines export series too.
        await using var host = await ServingHost.StartAsync(path, "--kv-cache-tokens", "128", "--kv-offload-tokens", "512",
            "--served-model-name", "tiny-offload");
        var http = host.Http;

        async Task<JsonNode> Complete(int[] prompt, int maxTokens)
        {
            var response = await http.PostAsJsonAsync("/v1/completions",
                new { model = "tiny-offload", prompt, max_tokens = maxTokens, temperature = 0, ignore_eos = true }, Ct);
            response.EnsureSuccessStatusCode();
            return JsonNode.Parse(await response.Content.ReadAsStringAsync(Ct))!;
        }

        var prefix = Enumerable.Range(0, 64).Select(i => 3 + i % 60).ToArray();
        await Complete([.. prefix, 50], 2);
        await Complete([.. Enumerable.Range(0, 100).Select(i => 3 + (i * 7 + 5) % 60)], 20); // fills the device cache
        var again = await Complete([.. prefix, 51], 2);
        Assert.Equal(64, again["usage"]!["prompt_tokens_details"]!["cached_tokens"]!.GetValue<int>());

        var metrics = await http.GetStringAsync("/metrics", Ct);
        double Value(string name) => ServingHost.Value(ServingHost.Series(metrics, name, "tiny-offload").Single());

        Assert.Equal(64, Value("aspireai:kv_offload_hits_total"));
        Assert.True(Value("aspireai:kv_offload_queries_total") >= 65);
        Assert.True(Value("aspireai:kv_offload_stored_total") >= 4);
        Assert.Equal(0, Value("aspireai:kv_offload_evicted_total"));
        Assert.Equal(4, Value("aspireai:kv_offload_loaded_total"));
        Assert.InRange(Value("aspireai:kv_offload_usage_perc"), 4.0 / 32, 1);
        Assert.Contains("# TYPE aspireai:kv_offload_hits_total counter", metrics);
        Assert.DoesNotContain("aspireai_kv_offload", metrics);
    }
}
