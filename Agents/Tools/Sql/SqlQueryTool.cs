using System.ComponentModel;
using System.Globalization;
using System.Text;
using AspireAi.Agents.Definitions;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.Options;
using Npgsql;

namespace AspireAi.Agents.Tools.Sql;

/// <summary>
/// <c>sql_query</c>: one SQL statement against a PostgreSQL connection configured for the agent
/// (<c>Agents:Sql:Connections:{name}</c>), in a <c>READ ONLY</c> transaction that is always rolled back, with
/// <c>statement_timeout</c> set and at most <c>Agents:Sql:MaxRows</c> rows read. Use a database role with read rights only as
/// well: a read-only transaction still lets functions with side effects on other systems run (e.g. dblink).
/// </summary>
internal sealed class SqlQueryTool(IOptions<AgentsOptions> options) : IToolFactory
{
    public string Type => ToolTypes.SqlQuery;

    public ValueTask<IReadOnlyList<ToolFunction>> CreateAsync(ToolSpec spec, ToolContext context, CancellationToken ct)
    {
        var name = spec.Connection!;
        if (!options.Value.Sql.Connections.TryGetValue(name, out var connectionString))
        {
            throw new ToolException($"sql_query: no connection named '{name}' is configured (Agents:Sql:Connections).");
        }

        var function = AIFunctionFactory.Create(
            ([Description("One SQL SELECT statement.")] string sql, CancellationToken cancellationToken = default) =>
                QueryAsync(connectionString, sql, cancellationToken),
            ToolTypes.SqlQuery,
            $"Runs one read-only SQL query on the '{name}' PostgreSQL database and returns the rows as a table (at most {options.Value.Sql.MaxRows}).");
        return ValueTask.FromResult<IReadOnlyList<ToolFunction>>([new ToolFunction(function, IsReadOnly: true, RequiresApproval: false)]);
    }

    public async Task<string> QueryAsync(string connectionString, string sql, CancellationToken ct)
    {
        var settings = options.Value.Sql;
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync(ct);
        await using var transaction = await connection.BeginTransactionAsync(ct);
        await using (var setup = new NpgsqlCommand(
            $"SET TRANSACTION READ ONLY; SET LOCAL statement_timeout = {(int)settings.StatementTimeout.TotalMilliseconds}", connection, transaction))
        {
            await setup.ExecuteNonQueryAsync(ct);
        }

        try
        {
            // Not prepared and not split: one statement, sent as is; a second statement fails in the extended protocol.
            await using var command = new NpgsqlCommand(sql, connection, transaction);
            await using var reader = await command.ExecuteReaderAsync(ct);
            var table = new StringBuilder();
            table.AppendLine(string.Join(" | ", Enumerable.Range(0, reader.FieldCount).Select(reader.GetName)));
            var rows = 0;
            var more = false;
            while (await reader.ReadAsync(ct))
            {
                if (rows == settings.MaxRows)
                {
                    more = true;
                    break;
                }

                table.AppendLine(string.Join(" | ", Enumerable.Range(0, reader.FieldCount)
                    .Select(i => reader.IsDBNull(i) ? "NULL" : Convert.ToString(reader.GetValue(i), CultureInfo.InvariantCulture))));
                rows++;
            }

            table.Append(more ? $"[stopped at the row limit of {settings.MaxRows}]" : $"({rows} rows)");
            return table.ToString();
        }
        catch (PostgresException ex)
        {
            throw new ToolException(ex.SqlState switch
            {
                "25006" => $"The query tried to write, and this connection is read-only: {ex.MessageText}",
                "57014" => $"The query ran past its {settings.StatementTimeout.TotalSeconds:0.#} s statement timeout and was cancelled.",
                _ => $"PostgreSQL error {ex.SqlState}: {ex.MessageText}",
            });
        }
        finally
        {
            await transaction.RollbackAsync(CancellationToken.None);
        }
    }
}
