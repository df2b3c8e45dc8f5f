using Npgsql;

namespace AspireAi.Retrieval.VectorStores.Embedded;

/// <summary>A <see cref="ChunkFilter"/> as SQL over the <c>chunks</c> table (values are parameters, never spliced).</summary>
internal static class FilterSql
{
    public static string Where(ChunkFilter filter, NpgsqlCommand command)
    {
        var sql = new System.Text.StringBuilder();
        foreach (var clause in filter.Clauses)
        {
            command.Parameters.Add(new NpgsqlParameter { Value = clause.Values.ToArray() });
            var values = $"${command.Parameters.Count}";
            if (clause.Field == FilterClause.DocumentIdField)
            {
                sql.Append($" AND document_id = ANY({values})");
            }
            else
            {
                command.Parameters.Add(new NpgsqlParameter { Value = clause.Field });
                sql.Append($" AND metadata->>${command.Parameters.Count} = ANY({values})");
            }
        }

        return sql.ToString();
    }
}
