using StackExchange.Redis;

namespace AspireAi.Gateway.Redis;

/// <summary>
/// Runs Redis operations so that Redis trouble never fails a request: when Redis is unreachable or errs, the operation's
/// fallback is used (no limit, no cache), the event is counted in <c>aspireai.gateway.redis.degraded</c> and logged at most
/// once every 10 seconds per component (an outage would otherwise log once per request).
/// </summary>
internal sealed class RedisGuard(IConnectionMultiplexer redis, GatewayMetrics metrics, ILogger<RedisGuard> logger)
{
    private static readonly TimeSpan LogInterval = TimeSpan.FromSeconds(10);
    private long _lastLogTicks;

    public IDatabase Database => redis.GetDatabase();

    public async ValueTask<T> RunAsync<T>(string component, Func<IDatabase, Task<T>> operation, T fallback)
    {
        // Disconnected: fail fast instead of waiting for the command timeout (the multiplexer reconnects in the background).
        if (!redis.IsConnected)
        {
            Degrade(component, null);
            return fallback;
        }

        try
        {
            return await operation(redis.GetDatabase());
        }
        catch (Exception ex) when (ex is RedisException or TimeoutException or ObjectDisposedException)
        {
            Degrade(component, ex);
            return fallback;
        }
    }

    private void Degrade(string component, Exception? error)
    {
        metrics.Degraded(component);
        var now = Environment.TickCount64;
        var last = Interlocked.Read(ref _lastLogTicks);
        if (now - last >= LogInterval.TotalMilliseconds && Interlocked.CompareExchange(ref _lastLogTicks, now, last) == last)
        {
            logger.LogWarning(error, "Redis is unavailable: {Component} runs degraded (no limits / no cache) until it is back", component);
        }
    }
}
