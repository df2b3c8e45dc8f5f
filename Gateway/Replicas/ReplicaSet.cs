using System.Net;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.ServiceDiscovery;

namespace AspireAi.Gateway.Replicas;

/// <summary>
/// The replicas of one service (e.g. <c>http://inference</c>): every endpoint service discovery knows for it
/// (<c>services:inference:http:0</c>, <c>:1</c>, … from the AppHost), read again every <c>Gateway:Replicas:RefreshSeconds</c>.
/// A replica keeps its in-flight count and circuit across refreshes while its address stays.
/// </summary>
internal sealed class ReplicaSet(string service, ServiceEndpointResolver resolver, IOptions<GatewayOptions> options,
    TimeProvider time, ILogger logger)
{
    private readonly ReplicaOptions _options = options.Value.Replicas;
    private readonly SemaphoreSlim _refreshing = new(1, 1);
    private volatile Replica[] _replicas = [];
    private long _refreshedAt = long.MinValue;

    public string Service { get; } = service;

    public async ValueTask<IReadOnlyList<Replica>> GetAsync(CancellationToken ct)
    {
        if (time.GetElapsedTime(Interlocked.Read(ref _refreshedAt)) > TimeSpan.FromSeconds(_options.RefreshSeconds) || _replicas.Length == 0)
        {
            await RefreshAsync(ct);
        }

        return _replicas;
    }

    private async Task RefreshAsync(CancellationToken ct)
    {
        if (!await _refreshing.WaitAsync(0, ct))
        {
            if (_replicas.Length > 0)
            {
                return; // someone else is refreshing; the current list is good enough meanwhile
            }

            await _refreshing.WaitAsync(ct);
        }

        try
        {
            var source = await resolver.GetEndpointsAsync(Service, ct);
            var scheme = new Uri(Service).Scheme;
            var addresses = source.Endpoints.Select(e => Address(e.EndPoint, scheme)).Distinct().ToList();
            var current = _replicas.ToDictionary(r => r.Address);
            _replicas = [.. addresses.Select(a => current.GetValueOrDefault(a) ?? new Replica(a, new CircuitBreaker(
                _options.FailureThreshold, TimeSpan.FromSeconds(_options.BreakSeconds), time)))];
            Interlocked.Exchange(ref _refreshedAt, time.GetTimestamp());
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            logger.LogWarning(ex, "Service discovery failed for {Service}; keeping {Count} known replicas", Service, _replicas.Length);
            Interlocked.Exchange(ref _refreshedAt, time.GetTimestamp());
        }
        finally
        {
            _refreshing.Release();
        }
    }

    private static string Address(EndPoint endPoint, string scheme) => endPoint switch
    {
        UriEndPoint uri => uri.Uri.GetLeftPart(UriPartial.Authority) + "/",
        IPEndPoint ip => $"{scheme}://{(ip.Address.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6 ? $"[{ip.Address}]" : ip.Address.ToString())}:{ip.Port}/",
        DnsEndPoint dns => $"{scheme}://{dns.Host}:{dns.Port}/",
        _ => $"{scheme}://{endPoint}/",
    };
}

/// <summary>One <see cref="ReplicaSet"/> per service address, made on first use.</summary>
internal sealed class ReplicaRegistry(ServiceEndpointResolver resolver, IOptions<GatewayOptions> options, TimeProvider time,
    ILogger<ReplicaRegistry> logger)
{
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, ReplicaSet> _sets = new();

    public ReplicaSet For(string service) => _sets.GetOrAdd(service, s => new ReplicaSet(s, resolver, options, time, logger));
}
