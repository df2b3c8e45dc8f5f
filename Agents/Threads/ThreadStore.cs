using AspireAi.Agents.Storage;
using Microsoft.Extensions.AI;
using Npgsql;
using NpgsqlTypes;

namespace AspireAi.Agents.Threads;

/// <summary>A stored message of a thread.</summary>
public sealed record ThreadMessage(long Seq, ChatMessage Message, string? RunId, DateTimeOffset CreatedAt);

/// <summary>Threads (conversations) and their messages: the agents' episodic memory.</summary>
public interface IThreadStore
{
    Task<string> CreateAsync(string tenant, CancellationToken ct);
    /// <summary>True when the thread exists and belongs to <paramref name="tenant"/>.</summary>
    Task<bool> ExistsAsync(string tenant, string threadId, CancellationToken ct);
    Task<IReadOnlyList<ThreadMessage>> MessagesAsync(string threadId, CancellationToken ct);
    Task AppendAsync(string threadId, string? runId, IEnumerable<ChatMessage> messages, CancellationToken ct);
    /// <summary>True when the run has already written its messages (so a resumed run does not write them twice).</summary>
    Task<bool> HasRunMessagesAsync(string threadId, string runId, CancellationToken ct);
    Task<bool> DeleteAsync(string tenant, string threadId, CancellationToken ct);
}

internal sealed class PostgresThreadStore(NpgsqlDataSource db) : IThreadStore
{
    public async Task<string> CreateAsync(string tenant, CancellationToken ct)
    {
        var id = "thread_" + Guid.NewGuid().ToString("N");
        await using var command = db.CreateCommand("INSERT INTO threads (id, tenant) VALUES ($1, $2)");
        command.Parameters.AddWithValue(id);
        command.Parameters.AddWithValue(tenant);
        await command.ExecuteNonQueryAsync(ct);
        return id;
    }

    public async Task<bool> ExistsAsync(string tenant, string threadId, CancellationToken ct)
    {
        await using var command = db.CreateCommand("SELECT 1 FROM threads WHERE id = $1 AND tenant = $2");
        command.Parameters.AddWithValue(threadId);
        command.Parameters.AddWithValue(tenant);
        return await command.ExecuteScalarAsync(ct) is not null;
    }

    public async Task<IReadOnlyList<ThreadMessage>> MessagesAsync(string threadId, CancellationToken ct)
    {
        await using var command = db.CreateCommand("SELECT seq, message, run_id, created_at FROM messages WHERE thread_id = $1 ORDER BY seq");
        command.Parameters.AddWithValue(threadId);
        await using var reader = await command.ExecuteReaderAsync(ct);
        var messages = new List<ThreadMessage>();
        while (await reader.ReadAsync(ct))
        {
            messages.Add(new ThreadMessage(reader.GetInt64(0), Json.Deserialize<ChatMessage>(reader.GetString(1)),
                reader.IsDBNull(2) ? null : reader.GetString(2), reader.GetFieldValue<DateTimeOffset>(3)));
        }

        return messages;
    }

    public async Task AppendAsync(string threadId, string? runId, IEnumerable<ChatMessage> messages, CancellationToken ct)
    {
        await using var batch = db.CreateBatch();
        foreach (var message in messages)
        {
            var command = new NpgsqlBatchCommand("INSERT INTO messages (thread_id, role, message, run_id) VALUES ($1, $2, $3, $4)");
            command.Parameters.AddWithValue(threadId);
            command.Parameters.AddWithValue(message.Role.Value);
            command.Parameters.AddWithValue(NpgsqlDbType.Jsonb, Json.Serialize(message));
            command.Parameters.AddWithValue((object?)runId ?? DBNull.Value);
            batch.BatchCommands.Add(command);
        }

        if (batch.BatchCommands.Count > 0)
        {
            await batch.ExecuteNonQueryAsync(ct);
        }
    }

    public async Task<bool> HasRunMessagesAsync(string threadId, string runId, CancellationToken ct)
    {
        await using var command = db.CreateCommand("SELECT 1 FROM messages WHERE thread_id = $1 AND run_id = $2 LIMIT 1");
        command.Parameters.AddWithValue(threadId);
        command.Parameters.AddWithValue(runId);
        return await command.ExecuteScalarAsync(ct) is not null;
    }

    public async Task<bool> DeleteAsync(string tenant, string threadId, CancellationToken ct)
    {
        await using var command = db.CreateCommand("DELETE FROM threads WHERE id = $1 AND tenant = $2");
        command.Parameters.AddWithValue(threadId);
        command.Parameters.AddWithValue(tenant);
        return await command.ExecuteNonQueryAsync(ct) == 1;
    }
}
