using Npgsql;

namespace AspireAi.Retrieval.Documents;

/// <summary>A document's current version: the content hash whose chunks are visible.</summary>
internal sealed record DocumentInfo(string Id, string ContentHash, string ContentType, int Chunks, long Bytes, string MetadataJson);

/// <summary>Documents in PostgreSQL: the row that names a document's visible version, always scoped to a tenant.</summary>
internal sealed class DocumentStore(NpgsqlDataSource db)
{
    public async Task<DocumentInfo?> GetAsync(string tenant, string collection, string id, CancellationToken ct)
    {
        await using var command = db.CreateCommand(
            "SELECT id, content_hash, content_type, chunk_count, bytes, metadata::text FROM documents WHERE tenant = $1 AND collection = $2 AND id = $3");
        command.Parameters.AddWithValue(tenant);
        command.Parameters.AddWithValue(collection);
        command.Parameters.AddWithValue(id);
        await using var reader = await command.ExecuteReaderAsync(ct);
        return await reader.ReadAsync(ct)
            ? new DocumentInfo(reader.GetString(0), reader.GetString(1), reader.GetString(2), reader.GetInt32(3), reader.GetInt64(4), reader.GetString(5))
            : null;
    }

    /// <summary>
    /// Makes <paramref name="document"/>'s version the visible one, in one statement: the switch from the old chunks to
    /// the new. False when the collection no longer exists (deleted while the document was being embedded).
    /// </summary>
    public async Task<bool> PublishAsync(string tenant, string collection, DocumentInfo document, CancellationToken ct)
    {
        await using var command = db.CreateCommand("""
            INSERT INTO documents (tenant, collection, id, content_hash, content_type, chunk_count, bytes, metadata)
            SELECT $1, $2, $3, $4, $5, $6, $7, $8::jsonb WHERE EXISTS (SELECT 1 FROM collections WHERE tenant = $1 AND name = $2)
            ON CONFLICT (tenant, collection, id) DO UPDATE SET content_hash = excluded.content_hash, content_type = excluded.content_type,
                chunk_count = excluded.chunk_count, bytes = excluded.bytes, metadata = excluded.metadata, updated_at = now()
            """);
        command.Parameters.AddWithValue(tenant);
        command.Parameters.AddWithValue(collection);
        command.Parameters.AddWithValue(document.Id);
        command.Parameters.AddWithValue(document.ContentHash);
        command.Parameters.AddWithValue(document.ContentType);
        command.Parameters.AddWithValue(document.Chunks);
        command.Parameters.AddWithValue(document.Bytes);
        command.Parameters.AddWithValue(document.MetadataJson);
        return await command.ExecuteNonQueryAsync(ct) > 0;
    }

    public async Task<bool> DeleteAsync(string tenant, string collection, string id, CancellationToken ct)
    {
        await using var command = db.CreateCommand("DELETE FROM documents WHERE tenant = $1 AND collection = $2 AND id = $3");
        command.Parameters.AddWithValue(tenant);
        command.Parameters.AddWithValue(collection);
        command.Parameters.AddWithValue(id);
        return await command.ExecuteNonQueryAsync(ct) > 0;
    }

    /// <summary>The visible version of each of <paramref name="ids"/> that exists.</summary>
    public async Task<Dictionary<string, string>> VisibleVersionsAsync(string tenant, string collection, IEnumerable<string> ids, CancellationToken ct)
    {
        await using var command = db.CreateCommand(
            "SELECT id, content_hash FROM documents WHERE tenant = $1 AND collection = $2 AND id = ANY($3)");
        command.Parameters.AddWithValue(tenant);
        command.Parameters.AddWithValue(collection);
        command.Parameters.AddWithValue(ids.Distinct().ToArray());
        await using var reader = await command.ExecuteReaderAsync(ct);
        var versions = new Dictionary<string, string>();
        while (await reader.ReadAsync(ct))
        {
            versions[reader.GetString(0)] = reader.GetString(1);
        }

        return versions;
    }
}
