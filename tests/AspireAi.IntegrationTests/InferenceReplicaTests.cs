using System.Globalization;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using System.Text.RegularExpressions;
using Aspire.Hosting;
using Aspire.Hosting.ApplicationModel;
using Microsoft.Extensions.DependencyInjection;

namespace AspireAi.IntegrationTests;

/// <summary>
/// <c>--inference-replicas 2</c>: two inference processes, each its own resource, that the gateway balances itself
/// (Aspire's own replicas would sit behind one proxy) and keeps serving through when one of them stops.
/// </summary>
[Collection(LocalAppHostCollection.Name)]
public sealed partial class InferenceReplicaTests(LocalAppHostFixture fixture)
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task The_gateway_spreads_requests_over_both_replicas_and_serves_on_when_one_stops()
    {
        using var gateway = fixture.CreateGatewayClient();
        var before = await ServedPerReplicaAsync();

        // Different prompts hash to different preferred replicas (prefix affinity), so 16 of them land on both unless the
        // gateway sees only one replica (the chance that rendezvous hashing puts all 16 on one of two is 2^-15).
        await Task.WhenAll(Enumerable.Range(0, 16).Select(i => CompleteAsync(gateway, $"{i}: Once upon a time")));
        var after = await ServedPerReplicaAsync();
        var served = after.Select((count, i) => count - before[i]).ToArray();
        Assert.Equal(16, served.Sum());
        Assert.All(served, count => Assert.True(count > 0, $"each replica serves some requests (served: {string.Join(", ", served)})"));

        // The replica crashes (killed, not stopped gracefully): requests that had not started streaming must not fail.
        var killed = LocalAppHostFixture.InferenceReplicas[1];
        KillProcessOf(killed);
        try
        {
            await fixture.App.ResourceNotifications.WaitForResourceAsync(killed, [KnownResourceStates.Exited, KnownResourceStates.Finished], Ct);
            await Task.WhenAll(Enumerable.Range(0, 8).Select(i => CompleteAsync(gateway, $"{i}: The little dog")));
        }
        finally
        {
            var start = await fixture.App.Services.GetRequiredService<ResourceCommandService>()
                .ExecuteCommandAsync(Resource(killed), KnownResourceCommands.StartCommand, Ct);
            Assert.True(start.Success, start.Message);
            await fixture.App.ResourceNotifications.WaitForResourceHealthyAsync(killed, Ct);
        }
    }

    private void KillProcessOf(string resource)
    {
        Assert.True(fixture.App.ResourceNotifications.TryGetCurrentState(resource, out var state), $"{resource} has no state");
        var pid = state.Snapshot.Properties.Single(p => p.Name == "executable.pid").Value;
        using var process = System.Diagnostics.Process.GetProcessById(Convert.ToInt32(pid, CultureInfo.InvariantCulture));
        process.Kill(entireProcessTree: true);
    }

    private static async Task CompleteAsync(HttpClient gateway, string prompt)
    {
        using var response = await gateway.PostAsJsonAsync("/v1/completions", new { model = "stories15M-q8_0", prompt, max_tokens = 4 }, Ct);
        var body = await response.Content.ReadAsStringAsync(Ct);
        Assert.True(response.StatusCode == HttpStatusCode.OK, $"{prompt}: {(int)response.StatusCode} {body}");
        Assert.Equal("text_completion", JsonDocument.Parse(body).RootElement.GetProperty("object").GetString());
    }

    /// <summary>Each replica's own count of finished requests (vLLM's <c>request_success_total</c>), read from its /metrics.</summary>
    private async Task<long[]> ServedPerReplicaAsync()
    {
        var counts = new List<long>();
        foreach (var replica in LocalAppHostFixture.InferenceReplicas)
        {
            using var client = fixture.App.CreateHttpClient(replica);
            var metrics = await client.GetStringAsync("/metrics", Ct);
            counts.Add(RequestSuccess().Matches(metrics).Sum(m => long.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture)));
        }

        return [.. counts];
    }

    private IResource Resource(string name) =>
        fixture.App.Services.GetRequiredService<DistributedApplicationModel>().Resources.Single(r => r.Name == name);

    [GeneratedRegex(@"^vllm:request_success_total\{[^}]*\} (\d+)", RegexOptions.Multiline)]
    private static partial Regex RequestSuccess();
}
