using System.Net.Http.Json;
using System.Text.Json;
using AspireAi.Gateway.Replicas;
using Microsoft.Extensions.Options;

namespace AspireAi.Gateway.Routing;

/// <summary>The gateway's own embeddings calls (for the semantic cache), routed like any request: model → deployment → replica.</summary>
internal sealed class EmbeddingClient(ModelRouter router, ReplicaRegistry registry, UpstreamClient upstream, IOptions<GatewayOptions> options)
{
    public async Task<float[]> EmbedAsync(string model, string text, CancellationToken ct)
    {
        foreach (var target in await router.ResolveAsync(model, ct))
        {
            var tried = new List<Replica>();
            var replicas = await registry.For(target.Service).GetAsync(ct);
            while (ReplicaSelector.Select(replicas, null, options.Value.Replicas.AffinitySlack, tried) is { } replica)
            {
                tried.Add(replica);
                replica.Begin();
                try
                {
                    using var response = await upstream.Http.PostAsJsonAsync(replica.Address + "v1/embeddings", new { model = target.Model, input = text }, ct);
                    response.EnsureSuccessStatusCode();
                    using var body = await JsonDocument.ParseAsync(await response.Content.ReadAsStreamAsync(ct), cancellationToken: ct);
                    return [.. body.RootElement.GetProperty("data")[0].GetProperty("embedding").EnumerateArray().Select(v => v.GetSingle())];
                }
                catch (HttpRequestException) when (tried.Count < replicas.Count)
                {
                    replica.Breaker.OnFailure();
                }
                finally
                {
                    replica.End();
                }
            }
        }

        throw new InvalidOperationException($"No deployment serves the embedding model '{model}'.");
    }
}
