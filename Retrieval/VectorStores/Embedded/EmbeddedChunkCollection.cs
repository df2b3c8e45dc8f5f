using System.Linq.Expressions;
using System.Runtime.CompilerServices;
using Microsoft.Extensions.VectorData;
using Npgsql;
using NpgsqlTypes;

namespace AspireAi.Retrieval.VectorStores.Embedded;

/// <summary>
/// One tenant's collection in the embedded store. Writes go to PostgreSQL first, in one transaction, and reach the
/// in-memory index only once committed; dense and keyword (BM25) search rank in memory and read the winners' rows back;
/// hybrid fuses both by reciprocal rank.
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
        var terms = new Dictionary<Guid, Dictionary<string, int>>(batch.Count);
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
            await using (var lexemes = new NpgsqlCommand("SELECT id, tsv FROM chunks WHERE id = ANY($1)", connection, transaction))
            {
                lexemes.Parameters.AddWithValue(batch.Select(r => r.Id).ToArray());
                await using var reader = await lexemes.ExecuteReaderAsync(cancellationToken);
                while (await reader.ReadAsync(cancellationToken))
                {
                    terms[reader.GetGuid(0)] = Terms(reader.GetFieldValue<NpgsqlTsVector>(1));
                }
            }

            await transaction.CommitAsync(cancellationToken);
        }

        index.Add(batch.Select((r, i) => new IndexedChunk(r.Id, r.DocumentId, r.Metadata, vectors[i], terms[r.Id])));
    }

    /// <summary>Lexeme → occurrences, from PostgreSQL's analysis of a chunk (or of a query).</summary>
    public static Dictionary<string, int> Terms(NpgsqlTsVector tsv)
    {
        var terms = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var lexeme in tsv)
        {
            terms[lexeme.Text] = Math.Max(1, lexeme.Count);
        }

        return terms;
    }

    public override async IAsyncEnumerable<VectorSearchResult<ChunkRecord>> SearchAsync<TInput>(TInput searchValue, int top,
        VectorSearchOptions<ChunkRecord>? options = null, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        foreach (var result in await DenseAsync(VectorOf(searchValue), top + (options?.Skip ?? 0), ChunkFilter.FromExpression(options?.Filter), options?.IncludeVectors ?? false, cancellationToken))
        {
            yield return result;
        }
    }

    /// <summary>BM25 in memory over PostgreSQL's English lexemes of the query (the same analysis as the chunks').</summary>
    public override async IAsyncEnumerable<VectorSearchResult<ChunkRecord>> KeywordSearchAsync(string query, int top, ChunkFilter filter,
        [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        if (indexes.Find(tenant, collection) is not { } index)
        {
            yield break;
        }

        await using var command = db.CreateCommand("SELECT to_tsvector('english', $1)");
        command.Parameters.AddWithValue(query);
        var terms = Terms((NpgsqlTsVector)(await command.ExecuteScalarAsync(cancellationToken))!).Keys;
        var ranked = index.KeywordSearch(terms, top, filter);
        var rows = await ReadAsync([.. ranked.Select(r => r.Id)], includeVectors: false, cancellationToken);
        foreach (var (id, score) in ranked)
        {
            if (rows.TryGetValue(id, out var record))
            {
                yield return new VectorSearchResult<ChunkRecord>(record, score);
            }
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
