namespace AspireAi.Gateway.Keys;

/// <summary>Where API keys live (PostgreSQL in production: <see cref="PostgresKeyStore"/>).</summary>
internal interface IKeyStore
{
    Task CreateAsync(ApiKey key, byte[] keyHash, CancellationToken ct);

    /// <summary>The key whose secret hashes to <paramref name="keyHash"/>, revoked or not; null when none.</summary>
    Task<ApiKey?> FindByHashAsync(byte[] keyHash, CancellationToken ct);

    Task<IReadOnlyList<ApiKey>> ListAsync(string? tenant, CancellationToken ct);

    /// <summary>Marks the key revoked; returns its hash (to forget it from caches), or null when no such key exists.</summary>
    Task<byte[]?> RevokeAsync(string id, CancellationToken ct);
}
