using System.Text.Json;
using Npgsql;

namespace AspireAi.Retrieval.Ingestion;

/// <summary>An ingestion job's state as <c>GET /v1/ingestions/{id}</c> shows it.</summary>
internal sealed record IngestionJob(
    string Id, string Collection, string DocumentId, string Status, int ChunksTotal, int ChunksDone, string? Error,
    DateTimeOffset? RetryAt, DateTimeOffset CreatedAt, DateTimeOffset UpdatedAt);

/// <summary>
/// Ingestion jobs in PostgreSQL: the prepared chunks are stored with the job, so a job survives a restart and resumes.
/// Statuses: queued → running → succeeded | failed | cancelled, and running ⇄ waiting (embedding service unavailable).
/// </summary>
internal sealed class IngestionStore(NpgsqlDataSource db)
{
    public static readonly string[] Pending = ["queued", "running", "waiting"];

    private const string JobColumns = "id, collection, document_id, status, chunks_total, chunks_done, error, retry_at, created_at, updated_at";

    /// <summary>A new queued job, or the pending one for the same document version (submitting twice starts one job).</summary>
    public async Task<IngestionJob> CreateAsync(string tenant, string collection, string embeddingModel, PreparedDocument document, CancellationToken ct)
    {
        await using var connection = await db.OpenConnectionAsync(ct);
        await using var transaction = await connection.BeginTransactionAsync(ct);
        // Serialises submissions of the same document so that two cannot both miss each other's job.
        await using (var lockCommand = new NpgsqlCommand("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", connection, transaction))
        {
            lockCommand.Parameters.AddWithValue($"{tenant}\n{collection}\n{document.DocumentId}");
            await lockCommand.ExecuteNonQueryAsync(ct);
        }

        await using (var existing = new NpgsqlCommand(
            $"SELECT {JobColumns} FROM ingestions WHERE tenant = $1 AND collection = $2 AND document_id = $3 AND content_hash = $4 AND status = ANY($5)",
            connection, transaction))
        {
            existing.Parameters.AddWithValue(tenant);
            existing.Parameters.AddWithValue(collection);
            existing.Parameters.AddWithValue(document.DocumentId);
            existing.Parameters.AddWithValue(document.ContentHash);
            existing.Parameters.AddWithValue(Pending);
            await using var reader = await existing.ExecuteReaderAsync(ct);
            if (await reader.ReadAsync(ct))
            {
                return Read(reader);
            }
        }

        var work = JsonSerializer.Serialize(new IngestionWork(embeddingModel, document));
        await using var insert = new NpgsqlCommand($"""
            INSERT INTO ingestions (id, tenant, collection, document_id, content_hash, status, chunks_total, work)
            VALUES ($1, $2, $3, $4, $5, 'queued', $6, $7::jsonb) RETURNING {JobColumns}
            """, connection, transaction);
        insert.Parameters.AddWithValue($"ing_{Guid.NewGuid():N}");
        insert.Parameters.AddWithValue(tenant);
        insert.Parameters.AddWithValue(collection);
        insert.Parameters.AddWithValue(document.DocumentId);
        insert.Parameters.AddWithValue(document.ContentHash);
        insert.Parameters.AddWithValue(document.Chunks.Count);
        insert.Parameters.AddWithValue(work);
        IngestionJob job;
        await using (var reader = await insert.ExecuteReaderAsync(ct))
        {
            await reader.ReadAsync(ct);
            job = Read(reader);
        }

        await transaction.CommitAsync(ct);
        return job;
    }

    public async Task<IngestionJob?> GetAsync(string tenant, string id, CancellationToken ct)
    {
        await using var command = db.CreateCommand($"SELECT {JobColumns} FROM ingestions WHERE tenant = $1 AND id = $2");
        command.Parameters.AddWithValue(tenant);
        command.Parameters.AddWithValue(id);
        await using var reader = await command.ExecuteReaderAsync(ct);
        return await reader.ReadAsync(ct) ? Read(reader) : null;
    }

    /// <summary>Takes the oldest job that is due (queued, or waiting past its retry time) and marks it running.</summary>
    public async Task<(string Tenant, IngestionJob Job, IngestionWork Work)?> ClaimNextAsync(CancellationToken ct)
    {
        await using var command = db.CreateCommand($"""
            UPDATE ingestions SET status = 'running', updated_at = now()
            WHERE id = (SELECT id FROM ingestions
                        WHERE status = 'queued' OR (status = 'waiting' AND retry_at <= now())
                        ORDER BY created_at LIMIT 1 FOR UPDATE SKIP LOCKED)
            RETURNING {JobColumns}, tenant, work::text
            """);
        await using var reader = await command.ExecuteReaderAsync(ct);
        if (!await reader.ReadAsync(ct))
        {
            return null;
        }

        return (reader.GetString(10), Read(reader), JsonSerializer.Deserialize<IngestionWork>(reader.GetString(11))!);
    }

    /// <summary>Records progress; false when the job is no longer running (cancelled meanwhile).</summary>
    public async Task<bool> ProgressAsync(string id, int done, CancellationToken ct)
    {
        await using var command = db.CreateCommand(
            "UPDATE ingestions SET chunks_done = $2, error = NULL, updated_at = now() WHERE id = $1 AND status = 'running'");
        command.Parameters.AddWithValue(id);
        command.Parameters.AddWithValue(done);
        return await command.ExecuteNonQueryAsync(ct) > 0;
    }

    public async Task WaitAsync(string id, string error, DateTimeOffset retryAt, CancellationToken ct)
    {
        await using var command = db.CreateCommand(
            "UPDATE ingestions SET status = 'waiting', error = $2, retry_at = $3, updated_at = now() WHERE id = $1 AND status = 'running'");
        command.Parameters.AddWithValue(id);
        command.Parameters.AddWithValue(error);
        command.Parameters.AddWithValue(retryAt);
        await command.ExecuteNonQueryAsync(ct);
    }

    public async Task FinishAsync(string id, string status, string? error, CancellationToken ct)
    {
        await using var command = db.CreateCommand(
            "UPDATE ingestions SET status = $2, error = $3, retry_at = NULL, updated_at = now(), " +
            "chunks_done = CASE WHEN $2 = 'succeeded' THEN chunks_total ELSE chunks_done END WHERE id = $1 AND status = 'running'");
        command.Parameters.AddWithValue(id);
        command.Parameters.AddWithValue(status);
        command.Parameters.Add(new NpgsqlParameter { Value = (object?)error ?? DBNull.Value, NpgsqlDbType = NpgsqlTypes.NpgsqlDbType.Text });
        await command.ExecuteNonQueryAsync(ct);
    }

    /// <summary>After a restart no job is running in this process: running ones go back to the queue.</summary>
    public async Task RequeueInterruptedAsync(CancellationToken ct)
    {
        await using var command = db.CreateCommand("UPDATE ingestions SET status = 'queued', updated_at = now() WHERE status = 'running'");
        await command.ExecuteNonQueryAsync(ct);
    }

    public Task CancelCollectionAsync(string tenant, string collection, CancellationToken ct) => CancelAsync(tenant, collection, null, ct);

    public Task CancelDocumentAsync(string tenant, string collection, string documentId, CancellationToken ct) =>
        CancelAsync(tenant, collection, documentId, ct);

    private async Task CancelAsync(string tenant, string collection, string? documentId, CancellationToken ct)
    {
        await using var command = db.CreateCommand(
            "UPDATE ingestions SET status = 'cancelled', updated_at = now() " +
            "WHERE tenant = $1 AND collection = $2 AND ($3::text IS NULL OR document_id = $3) AND status = ANY($4)");
        command.Parameters.AddWithValue(tenant);
        command.Parameters.AddWithValue(collection);
        command.Parameters.Add(new NpgsqlParameter { Value = (object?)documentId ?? DBNull.Value, NpgsqlDbType = NpgsqlTypes.NpgsqlDbType.Text });
        command.Parameters.AddWithValue(Pending);
        await command.ExecuteNonQueryAsync(ct);
    }

    private static IngestionJob Read(NpgsqlDataReader reader) => new(
        reader.GetString(0), reader.GetString(1), reader.GetString(2), reader.GetString(3), reader.GetInt32(4), reader.GetInt32(5),
        reader.IsDBNull(6) ? null : reader.GetString(6),
        reader.IsDBNull(7) ? null : reader.GetFieldValue<DateTimeOffset>(7),
        reader.GetFieldValue<DateTimeOffset>(8), reader.GetFieldValue<DateTimeOffset>(9));
}

/// <summary>What a job carries: the prepared document and the model to embed it with.</summary>
internal sealed record IngestionWork(string EmbeddingModel, PreparedDocument Document);
