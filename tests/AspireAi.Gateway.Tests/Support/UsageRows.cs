using Npgsql;

namespace AspireAi.Gateway.Tests.Support;

/// <summary>Reads what the gateway's usage writer put in <c>usage_records</c>.</summary>
internal static class UsageRows
{
    public sealed record Row(string Endpoint, string? Model, int Prompt, int Completion, int Status, string? Cache, float LatencyMs, string Tenant);

    public static async Task<List<Row>> ReadAsync(string database, string keyId)
    {
        await using var db = new NpgsqlConnection(database);
        await db.OpenAsync();
        await using var command = new NpgsqlCommand(
            "SELECT endpoint, model, prompt_tokens, completion_tokens, status, cache, latency_ms, tenant FROM usage_records WHERE key_id = $1 ORDER BY id", db)
        {
            Parameters = { new() { Value = keyId } },
        };
        await using var reader = await command.ExecuteReaderAsync();
        var rows = new List<Row>();
        while (await reader.ReadAsync())
        {
            rows.Add(new Row(reader.GetString(0), reader.IsDBNull(1) ? null : reader.GetString(1), reader.GetInt32(2), reader.GetInt32(3),
                reader.GetInt32(4), reader.IsDBNull(5) ? null : reader.GetString(5), reader.GetFloat(6), reader.GetString(7)));
        }

        return rows;
    }

    /// <summary>Waits (up to 10 s: the writer flushes every 0.2 s in tests) until at least <paramref name="count"/> rows exist.</summary>
    public static async Task<List<Row>> WaitForAsync(string database, string keyId, int count)
    {
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (true)
        {
            var rows = await ReadAsync(database, keyId);
            if (rows.Count >= count || DateTime.UtcNow > deadline)
            {
                Assert.True(rows.Count >= count, $"Expected {count} usage rows for {keyId}, found {rows.Count}.");
                return rows;
            }

            await Task.Delay(100);
        }
    }
}
