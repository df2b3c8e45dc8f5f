using System.Text.Json;
using AspireAi.Gateway.Replicas;
using Microsoft.Extensions.Options;

namespace AspireAi.Gateway.Routing;

/// <summary>A model as listed by <c>GET /v1/models</c>, with the deployment that serves it.</summary>
internal sealed record ModelEntry(string Id, long Created, string OwnedBy, string Deployment);

/// <summary>
/// Which deployment serves which model, learnt from each deployment's own <c>GET /v1/models</c> every
/// <c>Gateway:Models:RefreshSeconds</c>. A request for a model not (yet) known reads the lists again, at most once a
/// second: a miss within a second of the last reading waits out the rest of that second and then reads them unless
/// another request just did, so a deployment that just started — whose first listing may have timed out while it warmed
/// up — or a model just added is found rather than answered 404, and a stream of unknown models costs the deployments one
/// listing a second. A deployment that cannot be reached keeps its last known list: a replica restarting must not make its
/// models vanish.
/// </summary>
internal sealed class ModelCatalog(ReplicaRegistry registry, UpstreamClient upstream, IOptions<GatewayOptions> options,
    TimeProvider time, ILogger<ModelCatalog> logger) : BackgroundService
{
    private static readonly TimeSpan MinRefreshInterval = TimeSpan.FromSeconds(1);
    private readonly GatewayOptions _options = options.Value;
    private readonly SemaphoreSlim _refreshing = new(1, 1);
    private volatile IReadOnlyDictionary<string, IReadOnlyList<ModelEntry>> _byDeployment = new Dictionary<string, IReadOnlyList<ModelEntry>>();
    /// <summary>The timestamp of the last finished reading; <see cref="NeverRead"/> before the first.</summary>
    private long _refreshedAt = NeverRead;

    private const long NeverRead = long.MinValue;

    public IEnumerable<ModelEntry> Models => _byDeployment.Values.SelectMany(m => m);

    /// <summary>The models, read again first when none is known yet (the gateway started before its deployments answered).</summary>
    public async ValueTask<IEnumerable<ModelEntry>> ListAsync(CancellationToken ct)
    {
        if (!Models.Any())
        {
            await RefreshOnMissAsync(ct);
        }

        return Models;
    }

    /// <summary>The deployments serving <paramref name="model"/>, in configuration order; empty when none does.</summary>
    public async ValueTask<IReadOnlyList<string>> DeploymentsForAsync(string model, CancellationToken ct)
    {
        var found = Lookup(model);
        if (found.Count == 0)
        {
            await RefreshOnMissAsync(ct);
            found = Lookup(model);
        }

        return found;
    }

    /// <summary>
    /// Reads the lists again for a request that found nothing: once <see cref="MinRefreshInterval"/> has passed since the
    /// last reading (waiting for the rest of it), and only if no other reading has finished meanwhile — so before the first
    /// reading has finished it waits for that one. (No elapsed time is taken from <see cref="NeverRead"/>: the timestamp
    /// difference would overflow.)
    /// </summary>
    private async Task RefreshOnMissAsync(CancellationToken ct)
    {
        var seen = Interlocked.Read(ref _refreshedAt);
        var wait = seen == NeverRead ? TimeSpan.Zero : MinRefreshInterval - time.GetElapsedTime(seen);
        if (wait > TimeSpan.Zero)
        {
            await Task.Delay(wait, time, ct);
        }

        await RefreshAsync(unlessNewerThan: seen, ct);
    }

    private List<string> Lookup(string model) =>
        [.. _byDeployment.Where(d => d.Value.Any(m => m.Id == model)).Select(d => d.Key)];

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(_options.Models.RefreshSeconds), time);
        do
        {
            await RefreshAsync(stoppingToken);
        }
        while (await timer.WaitForNextTickAsync(stoppingToken));
    }

    public Task RefreshAsync(CancellationToken ct) => RefreshAsync(unlessNewerThan: null, ct);

    /// <summary>Reads every deployment's list, unless a reading has finished since the timestamp <paramref name="unlessNewerThan"/>.</summary>
    private async Task RefreshAsync(long? unlessNewerThan, CancellationToken ct)
    {
        await _refreshing.WaitAsync(ct);
        try
        {
            if (unlessNewerThan is { } seen && Interlocked.Read(ref _refreshedAt) != seen)
            {
                return;
            }

            var next = new Dictionary<string, IReadOnlyList<ModelEntry>>();
            foreach (var (deployment, service) in _options.EffectiveDeployments)
            {
                next[deployment] = await ListAsync(deployment, service, ct) ?? _byDeployment.GetValueOrDefault(deployment) ?? [];
            }

            _byDeployment = next;
            Interlocked.Exchange(ref _refreshedAt, time.GetTimestamp());
        }
        finally
        {
            _refreshing.Release();
        }
    }

    private async Task<IReadOnlyList<ModelEntry>?> ListAsync(string deployment, string service, CancellationToken ct)
    {
        foreach (var replica in await registry.For(service).GetAsync(ct))
        {
            try
            {
                using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
                timeout.CancelAfter(TimeSpan.FromSeconds(5));
                using var response = await upstream.Http.GetAsync(replica.Address + "v1/models", timeout.Token);
                response.EnsureSuccessStatusCode();
                using var body = JsonDocument.Parse(await response.Content.ReadAsStreamAsync(timeout.Token));
                return [.. body.RootElement.GetProperty("data").EnumerateArray().Select(m => new ModelEntry(
                    m.GetProperty("id").GetString()!,
                    m.TryGetProperty("created", out var c) && c.TryGetInt64(out var created) ? created : 0,
                    m.TryGetProperty("owned_by", out var o) ? o.GetString() ?? "aspireai" : "aspireai",
                    deployment))];
            }
            catch (Exception ex) when (ex is HttpRequestException or JsonException or KeyNotFoundException or InvalidOperationException
                                           || (ex is OperationCanceledException && !ct.IsCancellationRequested))
            {
                logger.LogDebug("Listing models of {Deployment} at {Replica} failed: {Error}", deployment, replica.Address, ex.Message);
            }
        }

        logger.LogWarning("No replica of deployment {Deployment} ({Service}) listed its models; keeping the last known list", deployment, service);
        return null;
    }
}
