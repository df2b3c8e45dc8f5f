using Microsoft.Extensions.Caching.Memory;
using Microsoft.Extensions.Options;

namespace AspireAi.Gateway.Keys;

/// <summary>
/// Finds the key behind a presented secret, remembering the answer (found or not) for <c>Gateway:Keys:CacheSeconds</c>: a
/// request then costs a hash and a dictionary lookup instead of a database round trip, and a flood of wrong keys cannot
/// reach the database more than once per distinct key and period. A revocation is seen by this replica at once
/// (<see cref="Forget"/>) and by the others within that period.
/// </summary>
internal sealed class KeyLookup(IKeyStore store, IOptions<GatewayOptions> options) : IDisposable
{
    // 100k entries of a few hundred bytes each: tens of MB at most, even under a wrong-key flood.
    private readonly MemoryCache _cache = new(new MemoryCacheOptions { SizeLimit = 100_000 });
    private readonly TimeSpan _ttl = TimeSpan.FromSeconds(options.Value.Keys.CacheSeconds);

    public async ValueTask<ApiKey?> FindAsync(string secret, CancellationToken ct)
    {
        var hash = ApiKeySecrets.Hash(secret);
        var cacheKey = Convert.ToBase64String(hash);
        if (_cache.TryGetValue(cacheKey, out ApiKey? cached))
        {
            return cached;
        }

        var key = await store.FindByHashAsync(hash, ct);
        if (_ttl > TimeSpan.Zero)
        {
            _cache.Set(cacheKey, key, new MemoryCacheEntryOptions { AbsoluteExpirationRelativeToNow = _ttl, Size = 1 });
        }

        return key;
    }

    public void Forget(byte[] keyHash) => _cache.Remove(Convert.ToBase64String(keyHash));

    public void Dispose() => _cache.Dispose();
}
