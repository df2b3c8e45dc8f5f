using System.Text.Json;
using AspireAi.Agents.Definitions;
using AspireAi.Agents.Storage;
using Npgsql;
using NpgsqlTypes;

namespace AspireAi.Agents.Runs;

/// <summary>A tool call's row: whether it ran, its result, and the approval decision where one is needed.</summary>
public sealed record ToolCallRecord(string Status, string? Result, string? DecisionReason, IReadOnlyList<AspireAi.Agents.Tools.Citation> Citations);

/// <summary>Runs, their events, step checkpoints and tool calls in PostgreSQL.</summary>
public sealed class RunStore(NpgsqlDataSource db)
{
    private const string RunColumns = "id, tenant, thread_id, agent, definition, input, status, output, citations, usage, error, created_at, completed_at";

    public async Task<RunRecord> CreateAsync(string tenant, string threadId, AgentDefinition agent, string input, CancellationToken ct)
    {
        var id = "run_" + Guid.NewGuid().ToString("N");
        await using var command = db.CreateCommand("""
            INSERT INTO runs (id, tenant, thread_id, agent, definition, input, status) VALUES ($1, $2, $3, $4, $5, $6, 'queued')
            """);
        command.Parameters.AddWithValue(id);
        command.Parameters.AddWithValue(tenant);
        command.Parameters.AddWithValue(threadId);
        command.Parameters.AddWithValue(agent.Name);
        command.Parameters.AddWithValue(NpgsqlDbType.Jsonb, Json.Serialize(agent));
        command.Parameters.AddWithValue(input);
        await command.ExecuteNonQueryAsync(ct);
        return (await GetAsync(id, ct))!;
    }

    public async Task<RunRecord?> GetAsync(string runId, CancellationToken ct)
    {
        await using var command = db.CreateCommand($"SELECT {RunColumns} FROM runs WHERE id = $1");
        command.Parameters.AddWithValue(runId);
        await using var reader = await command.ExecuteReaderAsync(ct);
        return await reader.ReadAsync(ct) ? ReadRun(reader) : null;
    }

    public async Task<IReadOnlyList<RunRecord>> ListAsync(string threadId, CancellationToken ct)
    {
        await using var command = db.CreateCommand($"SELECT {RunColumns} FROM runs WHERE thread_id = $1 ORDER BY created_at");
        command.Parameters.AddWithValue(threadId);
        await using var reader = await command.ExecuteReaderAsync(ct);
        var runs = new List<RunRecord>();
        while (await reader.ReadAsync(ct))
        {
            runs.Add(ReadRun(reader));
        }

        return runs;
    }

    public async Task SetStatusAsync(string runId, string status, CancellationToken ct)
    {
        await using var command = db.CreateCommand("UPDATE runs SET status = $2 WHERE id = $1 AND status NOT IN ('completed', 'incomplete', 'failed', 'cancelled')");
        command.Parameters.AddWithValue(runId);
        command.Parameters.AddWithValue(status);
        await command.ExecuteNonQueryAsync(ct);
    }

    /// <summary>
    /// Records the end of a run, gives up its lease and appends its end event <paramref name="end"/>, in one transaction: a
    /// reader that finds the run ended finds its end event too (<see cref="RunEventSink.EmitEndAsync"/>).
    /// </summary>
    public async Task FinishAsync(string runId, string status, string? output, JsonElement citations, JsonElement usage, JsonElement? error,
        RunEvent end, CancellationToken ct)
    {
        await using var connection = await db.OpenConnectionAsync(ct);
        await using var transaction = await connection.BeginTransactionAsync(ct);
        await using var update = new NpgsqlCommand("""
            UPDATE runs SET status = $2, output = $3, citations = $4, usage = $5, error = $6, completed_at = now(), owner = NULL, lease_until = NULL
            WHERE id = $1
            """, connection, transaction);
        update.Parameters.AddWithValue(runId);
        update.Parameters.AddWithValue(status);
        update.Parameters.AddWithValue((object?)output ?? DBNull.Value);
        update.Parameters.AddWithValue(NpgsqlDbType.Jsonb, citations.GetRawText());
        update.Parameters.AddWithValue(NpgsqlDbType.Jsonb, usage.GetRawText());
        update.Parameters.AddWithValue(NpgsqlDbType.Jsonb, (object?)error?.GetRawText() ?? DBNull.Value);
        await update.ExecuteNonQueryAsync(ct);
        await using var insert = WithEvent(new NpgsqlCommand(InsertEvent, connection, transaction), runId, end);
        await insert.ExecuteNonQueryAsync(ct);
        await transaction.CommitAsync(ct);
    }

    /// <summary>What the run has spent so far; a resumed run starts its budget from it.</summary>
    public async Task SaveUsageAsync(string runId, JsonElement usage, CancellationToken ct)
    {
        await using var command = db.CreateCommand("UPDATE runs SET usage = $2 WHERE id = $1");
        command.Parameters.AddWithValue(runId);
        command.Parameters.AddWithValue(NpgsqlDbType.Jsonb, usage.GetRawText());
        await command.ExecuteNonQueryAsync(ct);
    }

    // ── Leases: one instance executes a run at a time; a stopped or crashed instance's runs are taken over ──

    /// <summary>Takes the run for <paramref name="owner"/> when it is unfinished and nobody else holds a live lease on it.</summary>
    public async Task<bool> TryClaimAsync(string runId, string owner, TimeSpan lease, CancellationToken ct)
    {
        await using var command = db.CreateCommand("""
            UPDATE runs SET owner = $2, lease_until = now() + $3
            WHERE id = $1 AND status IN ('queued', 'running', 'requires_action')
              AND (owner IS NULL OR owner = $2 OR lease_until < now())
            """);
        command.Parameters.AddWithValue(runId);
        command.Parameters.AddWithValue(owner);
        command.Parameters.AddWithValue(lease);
        return await command.ExecuteNonQueryAsync(ct) == 1;
    }

    /// <summary>Unfinished runs whose lease is free or has expired: interrupted by a restart or a crash.</summary>
    public async Task<IReadOnlyList<string>> OrphanedAsync(int limit, CancellationToken ct)
    {
        await using var command = db.CreateCommand("""
            SELECT id FROM runs WHERE status IN ('queued', 'running', 'requires_action')
              AND (owner IS NULL OR lease_until < now()) ORDER BY created_at LIMIT $1
            """);
        command.Parameters.AddWithValue(limit);
        await using var reader = await command.ExecuteReaderAsync(ct);
        var ids = new List<string>();
        while (await reader.ReadAsync(ct))
        {
            ids.Add(reader.GetString(0));
        }

        return ids;
    }

    public async Task RenewAsync(IReadOnlyCollection<string> runIds, string owner, TimeSpan lease, CancellationToken ct)
    {
        await using var command = db.CreateCommand("UPDATE runs SET lease_until = now() + $3 WHERE id = ANY($1) AND owner = $2");
        command.Parameters.AddWithValue(runIds.ToArray());
        command.Parameters.AddWithValue(owner);
        command.Parameters.AddWithValue(lease);
        await command.ExecuteNonQueryAsync(ct);
    }

    /// <summary>Gives the runs back at once (a graceful stop), so that the next instance resumes them without waiting for the lease to expire.</summary>
    public async Task ReleaseAsync(IReadOnlyCollection<string> runIds, string owner, CancellationToken ct)
    {
        await using var command = db.CreateCommand("UPDATE runs SET owner = NULL, lease_until = NULL WHERE id = ANY($1) AND owner = $2");
        command.Parameters.AddWithValue(runIds.ToArray());
        command.Parameters.AddWithValue(owner);
        await command.ExecuteNonQueryAsync(ct);
    }

    // ── Events ──

    private const string InsertEvent = "INSERT INTO run_events (run_id, seq, type, data) VALUES ($1, $2, $3, $4)";

    /// <summary><paramref name="command"/> (an <see cref="InsertEvent"/>) with <paramref name="runEvent"/>'s values.</summary>
    private static NpgsqlCommand WithEvent(NpgsqlCommand command, string runId, RunEvent runEvent)
    {
        command.Parameters.AddWithValue(runId);
        command.Parameters.AddWithValue(runEvent.Seq);
        command.Parameters.AddWithValue(runEvent.Type);
        command.Parameters.AddWithValue(NpgsqlDbType.Jsonb, runEvent.Data.GetRawText());
        return command;
    }

    public async Task AppendEventAsync(string runId, RunEvent runEvent, CancellationToken ct)
    {
        await using var command = WithEvent(db.CreateCommand(InsertEvent), runId, runEvent);
        await command.ExecuteNonQueryAsync(ct);
    }

    /// <summary>
    /// Deletes the token events that <paramref name="step"/> streamed before an interruption and appends the event
    /// <paramref name="build"/> makes from how many there were, in one transaction: a replay never shows an interrupted
    /// attempt's text beside the attempt that replaces it, nor the resumed event without the discarding.
    /// </summary>
    public async Task<RunEvent> AppendDiscardingTokensAsync(string runId, string step, Func<int, RunEvent> build, CancellationToken ct)
    {
        await using var connection = await db.OpenConnectionAsync(ct);
        await using var transaction = await connection.BeginTransactionAsync(ct);
        await using var delete = new NpgsqlCommand("DELETE FROM run_events WHERE run_id = $1 AND type = $2 AND data->>'step' = $3", connection, transaction);
        delete.Parameters.AddWithValue(runId);
        delete.Parameters.AddWithValue(RunEventTypes.Token);
        delete.Parameters.AddWithValue(step);
        var runEvent = build(await delete.ExecuteNonQueryAsync(ct));
        await using var insert = WithEvent(new NpgsqlCommand(InsertEvent, connection, transaction), runId, runEvent);
        await insert.ExecuteNonQueryAsync(ct);
        await transaction.CommitAsync(ct);
        return runEvent;
    }

    public async Task<IReadOnlyList<RunEvent>> EventsAsync(string runId, int afterSeq, CancellationToken ct)
    {
        await using var command = db.CreateCommand("SELECT seq, type, data FROM run_events WHERE run_id = $1 AND seq > $2 ORDER BY seq");
        command.Parameters.AddWithValue(runId);
        command.Parameters.AddWithValue(afterSeq);
        await using var reader = await command.ExecuteReaderAsync(ct);
        var events = new List<RunEvent>();
        while (await reader.ReadAsync(ct))
        {
            events.Add(new RunEvent(reader.GetInt32(0), reader.GetString(1), JsonDocument.Parse(reader.GetString(2)).RootElement.Clone()));
        }

        return events;
    }

    public async Task<int> LastEventSeqAsync(string runId, CancellationToken ct)
    {
        await using var command = db.CreateCommand("SELECT coalesce(max(seq), 0) FROM run_events WHERE run_id = $1");
        command.Parameters.AddWithValue(runId);
        return (int)(await command.ExecuteScalarAsync(ct))!;
    }

    // ── Step checkpoints ──

    public async Task<Dictionary<string, JsonElement>> CompletedStepsAsync(string runId, CancellationToken ct)
    {
        await using var command = db.CreateCommand("SELECT step_key, result FROM run_steps WHERE run_id = $1 AND status = 'completed'");
        command.Parameters.AddWithValue(runId);
        await using var reader = await command.ExecuteReaderAsync(ct);
        var steps = new Dictionary<string, JsonElement>();
        while (await reader.ReadAsync(ct))
        {
            steps[reader.GetString(0)] = JsonDocument.Parse(reader.GetString(1)).RootElement.Clone();
        }

        return steps;
    }

    public async Task SaveStepAsync(string runId, string stepKey, string status, JsonElement result, CancellationToken ct)
    {
        await using var command = db.CreateCommand("""
            INSERT INTO run_steps (run_id, step_key, status, result) VALUES ($1, $2, $3, $4)
            ON CONFLICT (run_id, step_key) DO UPDATE SET status = $3, result = $4, updated_at = now()
            """);
        command.Parameters.AddWithValue(runId);
        command.Parameters.AddWithValue(stepKey);
        command.Parameters.AddWithValue(status);
        command.Parameters.AddWithValue(NpgsqlDbType.Jsonb, result.GetRawText());
        await command.ExecuteNonQueryAsync(ct);
    }

    // ── Tool calls by idempotency key ──

    /// <summary>Records a call about to run; returns the existing row instead when the key was seen before.</summary>
    public async Task<ToolCallRecord?> BeginToolCallAsync(string runId, string key, string callId, string stepKey, string tool,
        string argumentsJson, string status, CancellationToken ct)
    {
        await using var insert = db.CreateCommand("""
            INSERT INTO tool_calls (run_id, idempotency_key, call_id, step_key, tool, arguments, status)
            VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING
            """);
        insert.Parameters.AddWithValue(runId);
        insert.Parameters.AddWithValue(key);
        insert.Parameters.AddWithValue(callId);
        insert.Parameters.AddWithValue(stepKey);
        insert.Parameters.AddWithValue(tool);
        insert.Parameters.AddWithValue(NpgsqlDbType.Jsonb, argumentsJson);
        insert.Parameters.AddWithValue(status);
        if (await insert.ExecuteNonQueryAsync(ct) == 1)
        {
            return null;
        }

        return await GetToolCallAsync(runId, key, ct);
    }

    public async Task<ToolCallRecord?> GetToolCallAsync(string runId, string key, CancellationToken ct)
    {
        await using var command = db.CreateCommand("SELECT status, result, decision_reason, citations FROM tool_calls WHERE run_id = $1 AND idempotency_key = $2");
        command.Parameters.AddWithValue(runId);
        command.Parameters.AddWithValue(key);
        await using var reader = await command.ExecuteReaderAsync(ct);
        return await reader.ReadAsync(ct)
            ? new ToolCallRecord(reader.GetString(0), reader.IsDBNull(1) ? null : reader.GetString(1), reader.IsDBNull(2) ? null : reader.GetString(2),
                Json.Deserialize<List<AspireAi.Agents.Tools.Citation>>(reader.GetString(3)))
            : null;
    }

    public async Task SetToolCallAsync(string runId, string key, string status, string? result, CancellationToken ct,
        IReadOnlyList<AspireAi.Agents.Tools.Citation>? citations = null)
    {
        await using var command = db.CreateCommand("""
            UPDATE tool_calls SET status = $3, result = coalesce($4, result), citations = coalesce($5, citations),
                completed_at = CASE WHEN $3 IN ('completed', 'failed') THEN now() ELSE completed_at END
            WHERE run_id = $1 AND idempotency_key = $2
            """);
        command.Parameters.AddWithValue(runId);
        command.Parameters.AddWithValue(key);
        command.Parameters.AddWithValue(status);
        command.Parameters.AddWithValue(NpgsqlDbType.Text, (object?)result ?? DBNull.Value);
        command.Parameters.AddWithValue(NpgsqlDbType.Jsonb, citations is null ? DBNull.Value : Json.Serialize(citations));
        await command.ExecuteNonQueryAsync(ct);
    }

    /// <summary>Approves or rejects the run's pending call <paramref name="callId"/> (or its only pending call); false when none is pending.</summary>
    public async Task<bool> DecideAsync(string runId, string? callId, bool approved, string? reason, CancellationToken ct)
    {
        await using var command = db.CreateCommand("""
            UPDATE tool_calls SET status = $3, decision_reason = $4
            WHERE run_id = $1 AND status = 'awaiting_approval' AND ($2::text IS NULL OR call_id = $2)
            """);
        command.Parameters.AddWithValue(runId);
        command.Parameters.AddWithValue(NpgsqlDbType.Text, (object?)callId ?? DBNull.Value);
        command.Parameters.AddWithValue(approved ? "approved" : "rejected");
        command.Parameters.AddWithValue(NpgsqlDbType.Text, (object?)reason ?? DBNull.Value);
        return await command.ExecuteNonQueryAsync(ct) > 0;
    }

    public async Task<int> ExecutedToolCallsAsync(string runId, CancellationToken ct)
    {
        await using var command = db.CreateCommand("SELECT count(*) FROM tool_calls WHERE run_id = $1");
        command.Parameters.AddWithValue(runId);
        return (int)(long)(await command.ExecuteScalarAsync(ct))!;
    }

    private static RunRecord ReadRun(NpgsqlDataReader reader) => new()
    {
        Id = reader.GetString(0),
        Tenant = reader.GetString(1),
        ThreadId = reader.GetString(2),
        Agent = reader.GetString(3),
        Definition = Json.Deserialize<AgentDefinition>(reader.GetString(4)),
        Input = reader.GetString(5),
        Status = reader.GetString(6),
        Output = reader.IsDBNull(7) ? null : reader.GetString(7),
        Citations = JsonDocument.Parse(reader.GetString(8)).RootElement.Clone(),
        Usage = JsonDocument.Parse(reader.GetString(9)).RootElement.Clone(),
        Error = reader.IsDBNull(10) ? null : JsonDocument.Parse(reader.GetString(10)).RootElement.Clone(),
        CreatedAt = reader.GetFieldValue<DateTimeOffset>(11).ToUnixTimeSeconds(),
        CompletedAt = reader.IsDBNull(12) ? null : reader.GetFieldValue<DateTimeOffset>(12).ToUnixTimeSeconds(),
    };
}
