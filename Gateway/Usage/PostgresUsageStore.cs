using Npgsql;
using NpgsqlTypes;

namespace AspireAi.Gateway.Usage;

/// <summary>Writes usage batches into <c>usage_records</c> with binary COPY: one round trip per batch, however large.</summary>
internal sealed class PostgresUsageStore(NpgsqlDataSource db) : IUsageStore
{
    public async Task WriteAsync(IReadOnlyList<UsageRecord> batch, CancellationToken ct)
    {
        await using var connection = await db.OpenConnectionAsync(ct);
        await using var writer = await connection.BeginBinaryImportAsync(
            "COPY usage_records (at, key_id, tenant, endpoint, model, prompt_tokens, completion_tokens, latency_ms, status, cache) FROM STDIN (FORMAT BINARY)",
            ct);
        foreach (var r in batch)
        {
            await writer.StartRowAsync(ct);
            await writer.WriteAsync(r.At, NpgsqlDbType.TimestampTz, ct);
            await writer.WriteAsync(r.KeyId, NpgsqlDbType.Text, ct);
            await writer.WriteAsync(r.Tenant, NpgsqlDbType.Text, ct);
            await writer.WriteAsync(r.Endpoint, NpgsqlDbType.Text, ct);
            await WriteNullableAsync(writer, r.Model, ct);
            await writer.WriteAsync(r.PromptTokens, NpgsqlDbType.Integer, ct);
            await writer.WriteAsync(r.CompletionTokens, NpgsqlDbType.Integer, ct);
            await writer.WriteAsync((float)r.LatencyMs, NpgsqlDbType.Real, ct);
            await writer.WriteAsync(r.Status, NpgsqlDbType.Integer, ct);
            await WriteNullableAsync(writer, r.Cache, ct);
        }

        await writer.CompleteAsync(ct);
    }

    private static Task WriteNullableAsync(NpgsqlBinaryImporter writer, string? value, CancellationToken ct) =>
        value is null ? writer.WriteNullAsync(ct) : writer.WriteAsync(value, NpgsqlDbType.Text, ct);
}
