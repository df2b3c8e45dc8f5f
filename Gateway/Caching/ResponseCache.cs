using AspireAi.Gateway.Redis;
using Microsoft.Extensions.Options;
using StackExchange.Redis;

namespace AspireAi.Gateway.Caching;

/// <summary>
/// The exact response cache in Redis, keyed <c>cache:{tenant}:{model}:{sha256 of the canonical request}</c>: one tenant's
/// answers can never be found with another tenant's key. Redis trouble makes it a miss (see <see cref="RedisGuard"/>).
/// </summary>
internal sealed class ResponseCache(RedisGuard redis, IOptions<GatewayOptions> options)
{
    private readonly CacheOptions _options = options.Value.Cache;

    public bool Enabled => _options.Enabled;

    public int MaxEntryBytes => _options.MaxEntryBytes;

    public static string Key(string tenant, string model, string requestHash) => $"cache:{{{tenant}}}:{model}:{requestHash}";

    public async ValueTask<CachedResponse?> GetAsync(string key)
    {
        var value = await redis.RunAsync("cache", db => db.StringGetAsync(key), RedisValue.Null);
        return value.IsNullOrEmpty ? null : CachedResponse.Deserialize((byte[])value!);
    }

    public async ValueTask SetAsync(string key, CachedResponse response) =>
        await redis.RunAsync("cache", db => db.StringSetAsync(key, response.Serialize(), TimeSpan.FromSeconds(_options.TtlSeconds)), false);
}
