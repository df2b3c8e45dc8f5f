using System.Linq.Expressions;
using System.Runtime.CompilerServices;
using Microsoft.Extensions.VectorData;
using Npgsql;
using NpgsqlTypes;

namespace AspireAi.Retrieval.VectorStores.Embedded;

/// <summary>
/// One tenant's collection in the embedded store. Writes go to PostgreSQL first, in one transaction, and reach the
/// in-memory index only once committed; dense search ranks in memory and reads the winners' rows back; keyword search is
/// PostgreSQL full-text search; hybrid fuses both by reciprocal rank.
/// </summary>
internal sealed class EmbeddedChunkCollection(
    NpgsqlDataSource db, EmbeddedIndexes indexes, string tenant, string collection) : ChunkCollection
{
    private const string Columns = "id, document_id, document_version, chunk_index, text, metadata::text";

    public override string Name => $"{tenant}/{collection}";

    public override Task<bool> CollectionExistsAsync(CancellationToken cancellationToken = default) =>
        Task.FromResult(indexes.Find(tenant, collection) is not null);

    /// <summary>Nothing to create up front: the index is made with the first vector, whose length fixes its dimensions.</summary>
    public override Task EnsureCollectionExistsAsync(CancellationToken cancellationToken = default) => Task.CompletedTask;

    public override async Task EnsureCollectionDeletedAsync(CancellationToken cancellationToken = default)
    {
        await using var command = db.CreateCommand("DELETE FROM chunks WHERE tenant = $1 AND collection = $2");
        command.Parameters.AddWithValue(tenant);
        command.Parameters.AddWithValue(collection);
        await command.ExecuteNonQueryAsync(cancellationToken);
        indexes.Remove(tenant, collection);
    }

    public override async Task<ChunkRecord?> GetAsync(Guid key, RecordRetrievalOptions? options = null, CancellationToken cancellationToken = default)
    {
        var found = await ReadAsync([key], options?.IncludeVectors ?? false, cancellationToken);
        return found.GetValueOrDefault(key);
    }

    public override async IAsyncEnumerable<ChunkRecord> GetAsync(Expression<Func<ChunkRecord, bool>> filter, int top,
        FilteredRecordRetrievalOptions<ChunkRecord>? options = null, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var includeVectors = options?.IncludeVectors ?? false;
        await using var command = db.CreateCommand();
        command.Parameters.AddWithValue(tenant);
        command.Parameters.AddWithValue(collection);
        var where = FilterSql.Where(ChunkFilter.FromExpression(filter), command);
        command.Parameters.AddWithValue(top);
        command.Parameters.AddWithValue(options?.Skip ?? 0);
        command.CommandText = $"SELECT {Columns}{(includeVectors ? ", embedding" : "")} FROM chunks WHERE tenant = $1 AND collection = $2{where} " +
                              $"ORDER BY document_id, chunk_index LIMIT ${command.Parameters.Count - 1} OFFSET ${command.Parameters.Count}";
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
        {
            yield return Read(reader, includeVectors);
        }
    }

    public override async Task DeleteAsync(Guid key, CancellationToken cancellationToken = default)
    {
        await using var command = db.CreateCommand("DELETE FROM chunks WHERE tenant = $1 AND collection = $2 AND id = $3");
        command.Parameters.AddWithValue(tenant);
        command.Parameters.AddWithValue(collection);
        command.Parameters.AddWithValue(key);
        await command.ExecuteNonQueryAsync(cancellationToken);
        indexes.Find(tenant, collection)?.Remove([key]);
    }

    public override async Task DeleteDocumentAsync(string documentId, string? keepVersion, CancellationToken cancellationToken = default)
    {
        await using var command = db.CreateCommand(
            "DELETE FROM chunks WHERE tenant = $1 AND collection = $2 AND document_id = $3 AND ($4::text IS NULL OR document_version <> $4) RETURNING id");
        command.Parameters.AddWithValue(tenant);
        command.Parameters.AddWithValue(collection);
        command.Parameters.AddWithValue(documentId);
        command.Parameters.Add(new NpgsqlParameter { Value = (object?)keepVersion ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Text });
        var deleted = new List<Guid>();
        await using (var reader = await command.ExecuteReaderAsync(cancellationToken))
        {
            while (await reader.ReadAsync(cancellationToken))
            {
                deleted.Add(reader.GetGuid(0));
            }
        }

        indexes.Find(tenant, collection)?.Remove(deleted);
    }

    public override Task UpsertAsync(ChunkRecord record, CancellationToken cancellationToken = default) =>
        UpsertAsync([record], cancellationToken);

    /// <summary>All records in one transaction, then into the index: a batch is visible whole or not at all.</summary>
    public override async Task UpsertAsync(IEnumerable<ChunkRecord> records, CancellationToken cancellationToken = default)
    {
        var batch = records.ToList();
        if (batch.Count == 0)
        {
            return;
        }

        var vectors = batch.Select(r => r.Embedding ?? throw new ArgumentException($"Chunk {r.Id} has no embedding.")).ToList();
        var index = indexes.GetOrCreate(tenant, collection, vectors[0].Length);
        await using (var connection = await db.OpenConnectionAsync(cancellationToken))
        await using (var transaction = await connection.BeginTransactionAsync(cancellationToken))
        {
            await using var insert = new NpgsqlBatch(connection, transaction);
            for (var i = 0; i < batch.Count; i++)
            {
                var record = batch[i];
                var command = new NpgsqlBatchCommand(
                    "INSERT INTO chunks (id, tenant, collection, document_id, document_version, chunk_index, text, metadata, embedding) " +
                    "VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb, $9) ON CONFLICT (id) DO NOTHING");
                command.Parameters.AddWithValue(record.Id);
                command.Parameters.AddWithValue(tenant);
                command.Parameters.AddWithValue(collection);
                command.Parameters.AddWithValue(record.DocumentId);
                command.Parameters.AddWithValue(record.DocumentVersion);
                command.Parameters.AddWithValue(record.ChunkIndex);
                command.Parameters.AddWithValue(record.Text);
                command.Parameters.AddWithValue(record.MetadataJson);
                command.Parameters.AddWithValue(vectors[i].ToArray());
                insert.BatchCommands.Add(command);
            }

            await insert.ExecuteNonQueryAsync(cancellationToken);
            await transaction.CommitAsync(cancellationToken);
        }

        index.Add(batch.Select((r, i) => (r.Id, r.DocumentId, r.Metadata, vectors[i])));
    }

    public override async IAsyncEnumerable<VectorSearchResult<ChunkRecord>> SearchAsync<TInput>(TInput searchValue, int top,
        VectorSearchOptions<ChunkRecord>? options = null, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        foreach (var result in await DenseAsync(VectorOf(searchValue), top + (options?.Skip ?? 0), ChunkFilter.FromExpression(options?.Filter), options?.IncludeVectors ?? false, cancellationToken))
        {
            yield return result;
        }
    }

    public override async IAsyncEnumerable<VectorSearchResult<ChunkRecord>> KeywordSearchAsync(string query, int top, ChunkFilter filter,
        [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        await using var command = db.CreateCommand();
        command.Parameters.AddWithValue(tenant);
        command.Parameters.AddWithValue(collection);
        command.Parameters.AddWithValue(query);
        var where = FilterSql.Where(filter, command);
        command.Parameters.AddWithValue(top);
        // plainto_tsquery ANDs the words; a question rarely shares all of them with its answer, so the words are ORed and
        // ranked by ts_rank with length normalisation 1 (÷ 1 + log length), the closest PostgreSQL comes to BM25.
        command.CommandText =
            $"SELECT {Columns}, ts_rank(tsv, q, 1) AS score " +
            "FROM chunks, CAST(replace(CAST(plainto_tsquery('english', $3) AS text), '&', '|') AS tsquery) AS q " +
            $"WHERE tenant = $1 AND collection = $2 AND tsv @@ q{where} ORDER BY score DESC, id LIMIT ${command.Parameters.Count}";
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
        {
            yield return new VectorSearchResult<ChunkRecord>(Read(reader, includeVector: false), reader.GetFloat(6));
        }
    }

    public override async IAsyncEnumerable<VectorSearchResult<ChunkRecord>> HybridSearchAsync<TInput>(TInput searchValue,
        ICollection<string> keywords, int top, HybridSearchOptions<ChunkRecord>? options = null,
        [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var filter = ChunkFilter.FromExpression(options?.Filter);
        var depth = Math.Max(3 * top, 30); // each list ranked deeper than the answer, so that fusion can promote from below
        var dense = (await DenseAsync(VectorOf(searchValue), depth, filter, false, cancellationToken)).Select(r => r.Record).ToList();
        var keyword = new List<ChunkRecord>();
        await foreach (var result in KeywordSearchAsync(string.Join(' ', keywords), depth, filter, cancellationToken))
        {
            keyword.Add(result.Record);
        }

        foreach (var result in ReciprocalRankFusion(top, dense, keyword))
        {
            yield return result;
        }
    }

    public override object? GetService(Type serviceType, object? serviceKey = null) =>
        serviceType == typeof(VectorStoreCollectionMetadata)
            ? new VectorStoreCollectionMetadata { VectorStoreSystemName = "aspireai-embedded", CollectionName = Name }
            : serviceType.IsInstanceOfType(this) ? this : null;

    private async Task<List<VectorSearchResult<ChunkRecord>>> DenseAsync(
        ReadOnlyMemory<float> query, int top, ChunkFilter filter, bool includeVectors, CancellationToken cancellationToken)
    {
        if (indexes.Find(tenant, collection) is not { } index)
        {
            return [];
        }

        var ranked = index.Search(query.Span, top, filter);
        var rows = await ReadAsync([.. ranked.Select(r => r.Id)], includeVectors, cancellationToken);
        return [.. ranked.Where(r => rows.ContainsKey(r.Id)).Select(r => new VectorSearchResult<ChunkRecord>(rows[r.Id], r.Score))];
    }

    private async Task<Dictionary<Guid, ChunkRecord>> ReadAsync(Guid[] ids, bool includeVectors, CancellationToken cancellationToken)
    {
        await using var command = db.CreateCommand(
            $"SELECT {Columns}{(includeVectors ? ", embedding" : "")} FROM chunks WHERE tenant = $1 AND collection = $2 AND id = ANY($3)");
        command.Parameters.AddWithValue(tenant);
        command.Parameters.AddWithValue(collection);
        command.Parameters.AddWithValue(ids);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        var rows = new Dictionary<Guid, ChunkRecord>(ids.Length);
        while (await reader.ReadAsync(cancellationToken))
        {
            var record = Read(reader, includeVectors);
            rows[record.Id] = record;
        }

        return rows;
    }

    private static ChunkRecord Read(NpgsqlDataReader reader, bool includeVector) => new()
    {
        Id = reader.GetGuid(0),
        DocumentId = reader.GetString(1),
        DocumentVersion = reader.GetString(2),
        ChunkIndex = reader.GetInt32(3),
        Text = reader.GetString(4),
        MetadataJson = reader.GetString(5),
        Embedding = includeVector ? reader.GetFieldValue<float[]>(6) : null,
    };
}
