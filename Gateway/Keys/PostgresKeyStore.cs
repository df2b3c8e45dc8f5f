using Npgsql;

namespace AspireAi.Gateway.Keys;

/// <summary><see cref="IKeyStore"/> over the <c>api_keys</c> table of <c>gatewaydb</c>.</summary>
internal sealed class PostgresKeyStore(NpgsqlDataSource db) : IKeyStore
{
    private const string Columns =
        "id, tenant, name, scopes, models, requests_per_minute, tokens_per_minute, token_budget, budget_period, key_hint, created_at, revoked_at";

    public async Task CreateAsync(ApiKey key, byte[] keyHash, CancellationToken ct)
    {
        await using var command = db.CreateCommand("""
            INSERT INTO api_keys (id, key_hash, key_hint, tenant, name, scopes, models,
                                  requests_per_minute, tokens_per_minute, token_budget, budget_period, created_at)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
            """);
        command.Parameters.AddWithValue(key.Id);
        command.Parameters.AddWithValue(keyHash);
        command.Parameters.AddWithValue(key.Hint);
        command.Parameters.AddWithValue(key.Tenant);
        command.Parameters.AddWithValue((object?)key.Name ?? DBNull.Value);
        command.Parameters.AddWithValue(key.Scopes.ToArray());
        command.Parameters.AddWithValue(key.Models.ToArray());
        command.Parameters.AddWithValue((object?)key.Limits.RequestsPerMinute ?? DBNull.Value);
        command.Parameters.AddWithValue((object?)key.Limits.TokensPerMinute ?? DBNull.Value);
        command.Parameters.AddWithValue((object?)key.Limits.TokenBudget ?? DBNull.Value);
        command.Parameters.AddWithValue((object?)key.Limits.BudgetPeriod?.ToString().ToLowerInvariant() ?? DBNull.Value);
        command.Parameters.AddWithValue(key.CreatedAt);
        await command.ExecuteNonQueryAsync(ct);
    }

    public async Task<ApiKey?> FindByHashAsync(byte[] keyHash, CancellationToken ct)
    {
        await using var command = db.CreateCommand($"SELECT {Columns} FROM api_keys WHERE key_hash = $1");
        command.Parameters.AddWithValue(keyHash);
        await using var reader = await command.ExecuteReaderAsync(ct);
        return await reader.ReadAsync(ct) ? Read(reader) : null;
    }

    public async Task<IReadOnlyList<ApiKey>> ListAsync(string? tenant, CancellationToken ct)
    {
        await using var command = db.CreateCommand(
            $"SELECT {Columns} FROM api_keys WHERE ($1::text IS NULL OR tenant = $1) ORDER BY created_at, id");
        command.Parameters.AddWithValue((object?)tenant ?? DBNull.Value);
        await using var reader = await command.ExecuteReaderAsync(ct);
        var keys = new List<ApiKey>();
        while (await reader.ReadAsync(ct))
        {
            keys.Add(Read(reader));
        }

        return keys;
    }

    public async Task<byte[]?> RevokeAsync(string id, CancellationToken ct)
    {
        await using var command = db.CreateCommand(
            "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, now()) WHERE id = $1 RETURNING key_hash");
        command.Parameters.AddWithValue(id);
        return await command.ExecuteScalarAsync(ct) as byte[];
    }

    private static ApiKey Read(NpgsqlDataReader r) => new(
        Id: r.GetString(0),
        Tenant: r.GetString(1),
        Name: r.IsDBNull(2) ? null : r.GetString(2),
        Scopes: r.GetFieldValue<string[]>(3),
        Models: r.GetFieldValue<string[]>(4),
        Limits: new KeyLimits(
            r.IsDBNull(5) ? null : r.GetInt32(5),
            r.IsDBNull(6) ? null : r.GetInt32(6),
            r.IsDBNull(7) ? null : r.GetInt64(7),
            r.IsDBNull(8) ? null : Enum.Parse<BudgetPeriod>(r.GetString(8), ignoreCase: true)),
        Hint: r.GetString(9),
        CreatedAt: r.GetFieldValue<DateTimeOffset>(10),
        RevokedAt: r.IsDBNull(11) ? null : r.GetFieldValue<DateTimeOffset>(11));
}
