using System.Collections.Concurrent;
using AspireAi.Gateway.Replicas;
using AspireAi.Gateway.Routing;
using AspireAi.ServiceDefaults;
using Microsoft.Extensions.Options;

namespace AspireAi.Gateway.Batches;

/// <summary>Where a replica tag lives: found at a replica, or not found while every replica answered, or not found while some did not.</summary>
internal enum TagLookup
{
    Found,
    Unknown,
    Unreachable,
}

/// <summary>
/// Which inference replica holds the files and batches of each replica tag (<see cref="BatchIds"/>). Inference names its tag
/// in every response (<see cref="BatchIds.ReplicaHeader"/>), so the directory learns from every answer the gateway forwards,
/// and asks every replica (<c>GET /v1/models</c>, answered by all of them) when an id carries a tag it does not know.
/// </summary>
/// <remarks>
/// The mapping is learnt rather than stored (say, id → replica in Redis): the ids carry their replica, the replicas say who
/// they are, so nothing can get out of step, every gateway replica learns the same answer, and batches keep working while
/// Redis is down (Redis is optional for the gateway). A replica's tag belongs to its state folder, so it stays the same
/// across restarts and new addresses; a tag seen at an address that service discovery no longer lists is looked up again.
/// </remarks>
internal sealed class BatchReplicaDirectory(ReplicaRegistry registry, UpstreamClient upstream, IOptions<GatewayOptions> options,
    ILogger<BatchReplicaDirectory> logger)
{
    private static readonly TimeSpan ProbeTimeout = TimeSpan.FromSeconds(5);
    private readonly ConcurrentDictionary<string, Replica> _byTag = new(StringComparer.Ordinal);

    /// <summary>The service address (e.g. <c>http://inference</c>) of every inference deployment.</summary>
    public IEnumerable<string> Services => options.Value.EffectiveDeployments.Values.Distinct(StringComparer.Ordinal);

    /// <summary>Every replica of every inference deployment, as service discovery lists them now.</summary>
    public async Task<IReadOnlyList<Replica>> AllAsync(CancellationToken ct)
    {
        var replicas = new List<Replica>();
        foreach (var service in Services)
        {
            replicas.AddRange(await registry.For(service).GetAsync(ct));
        }

        return replicas;
    }

    /// <summary>Remembers the tag that <paramref name="replica"/> named in <paramref name="response"/>.</summary>
    public void Learn(Replica replica, HttpResponseMessage response)
    {
        if (response.Headers.TryGetValues(BatchIds.ReplicaHeader, out var values) && values.FirstOrDefault() is { } tag && BatchIds.IsReplicaTag(tag))
        {
            _byTag[tag] = replica;
        }
    }

    /// <summary>The replica holding <paramref name="tag"/>: known, or found by asking every replica.</summary>
    public async Task<(TagLookup Result, Replica? Replica)> LocateAsync(string tag, CancellationToken ct)
    {
        var all = await AllAsync(ct);
        if (_byTag.TryGetValue(tag, out var known) && all.Contains(known))
        {
            return (TagLookup.Found, known);
        }

        var answered = await Task.WhenAll(all.Select(replica => ProbeAsync(replica, ct)));
        if (_byTag.TryGetValue(tag, out known) && all.Contains(known))
        {
            return (TagLookup.Found, known);
        }

        // Unknown only when every replica answered: a replica that did not may be the one holding the tag.
        return (answered.Length > 0 && answered.All(a => a) ? TagLookup.Unknown : TagLookup.Unreachable, null);
    }

    private async Task<bool> ProbeAsync(Replica replica, CancellationToken ct)
    {
        try
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
            timeout.CancelAfter(ProbeTimeout);
            using var response = await upstream.Http.GetAsync(replica.Address + "v1/models", HttpCompletionOption.ResponseHeadersRead, timeout.Token);
            Learn(replica, response);
            return response.IsSuccessStatusCode;
        }
        catch (Exception ex) when (ex is HttpRequestException || (ex is OperationCanceledException && !ct.IsCancellationRequested))
        {
            logger.LogDebug("Replica {Replica} did not answer the batch directory's probe: {Error}", replica.Address, ex.Message);
            return false;
        }
    }
}
