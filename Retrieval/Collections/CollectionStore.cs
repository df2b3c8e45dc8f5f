using Npgsql;

namespace AspireAi.Retrieval.Collections;

/// <summary>A tenant's collection: its name and the embedding model its vectors come from.</summary>
internal sealed record CollectionInfo(string Name, string EmbeddingModel, DateTimeOffset CreatedAt, long Documents = 0);

/// <summary>Collections in PostgreSQL, always scoped to one tenant.</summary>
internal sealed class CollectionStore(NpgsqlDataSource db)
{
    public async Task<CollectionInfo?> GetAsync(string tenant, string name, CancellationToken ct)
    {
        await using var command = db.CreateCommand("SELECT name, embedding_model, created_at FROM collections WHERE tenant = $1 AND name = $2");
        command.Parameters.AddWithValue(tenant);
        command.Parameters.AddWithValue(name);
        await using var reader = await command.ExecuteReaderAsync(ct);
        return await reader.ReadAsync(ct) ? new CollectionInfo(reader.GetString(0), reader.GetString(1), reader.GetFieldValue<DateTimeOffset>(2)) : null;
    }

    /// <summary>Creates the collection unless it exists; returns it and whether this call created it.</summary>
    public async Task<(CollectionInfo Collection, bool Created)> CreateAsync(string tenant, string name, string embeddingModel, CancellationToken ct)
    {
        await using var command = db.CreateCommand(
            "INSERT INTO collections (tenant, name, embedding_model) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING RETURNING created_at");
        command.Parameters.AddWithValue(tenant);
        command.Parameters.AddWithValue(name);
        command.Parameters.AddWithValue(embeddingModel);
        if (await command.ExecuteScalarAsync(ct) is DateTime created)
        {
            return (new CollectionInfo(name, embeddingModel, new DateTimeOffset(created, TimeSpan.Zero)), true);
        }

        return (await GetAsync(tenant, name, ct) ?? throw new InvalidOperationException($"Collection '{name}' vanished while being created."), false);
    }

    public async Task<List<CollectionInfo>> ListAsync(string tenant, CancellationToken ct)
    {
        await using var command = db.CreateCommand("""
            SELECT c.name, c.embedding_model, c.created_at, count(d.id)
            FROM collections c LEFT JOIN documents d ON d.tenant = c.tenant AND d.collection = c.name
            WHERE c.tenant = $1 GROUP BY c.name, c.embedding_model, c.created_at ORDER BY c.name
            """);
        command.Parameters.AddWithValue(tenant);
        await using var reader = await command.ExecuteReaderAsync(ct);
        var list = new List<CollectionInfo>();
        while (await reader.ReadAsync(ct))
        {
            list.Add(new CollectionInfo(reader.GetString(0), reader.GetString(1), reader.GetFieldValue<DateTimeOffset>(2), reader.GetInt64(3)));
        }

        return list;
    }

    /// <summary>Deletes the collection row (its documents go with it, by cascade); false when there was none.</summary>
    public async Task<bool> DeleteAsync(string tenant, string name, CancellationToken ct)
    {
        await using var command = db.CreateCommand("DELETE FROM collections WHERE tenant = $1 AND name = $2");
        command.Parameters.AddWithValue(tenant);
        command.Parameters.AddWithValue(name);
        return await command.ExecuteNonQueryAsync(ct) > 0;
    }
}
