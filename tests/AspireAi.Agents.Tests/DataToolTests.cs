using AspireAi.Agents.Tools;
using AspireAi.Agents.Tools.Files;
using AspireAi.Agents.Tools.Sql;
using AspireAi.TestSupport;
using Microsoft.Extensions.Options;
using Npgsql;

namespace AspireAi.Agents.Tests;

/// <summary>sql_query on a real PostgreSQL database (read-only, timeout, row limit) and the workspace confinement of the file tools.</summary>
public sealed class DataToolTests(PostgresServer postgres)
{
    [Fact]
    public async Task Sql_queries_read_but_cannot_write_run_long_or_return_unbounded_rows()
    {
        var database = await postgres.CreateDatabaseAsync("agents_sql");
        await using (var connection = new NpgsqlConnection(database))
        {
            await connection.OpenAsync();
            await new NpgsqlCommand("CREATE TABLE items (n int); INSERT INTO items SELECT generate_series(1, 50)", connection).ExecuteNonQueryAsync();
        }

        var tool = new SqlQueryTool(Options.Create(new AgentsOptions { Sql = new SqlToolOptions { MaxRows = 10, StatementTimeout = TimeSpan.FromMilliseconds(300) } }));
        var rows = await tool.QueryAsync(database, "SELECT n FROM items WHERE n <= 3 ORDER BY n", CancellationToken.None);
        Assert.Equal("n\n1\n2\n3\n(3 rows)", rows.ReplaceLineEndings("\n"));
        Assert.Contains("row limit of 10", await tool.QueryAsync(database, "SELECT n FROM items", CancellationToken.None));

        var write = await Assert.ThrowsAsync<ToolException>(() => tool.QueryAsync(database, "DELETE FROM items", CancellationToken.None));
        Assert.Contains("read-only", write.Message);
        var slow = await Assert.ThrowsAsync<ToolException>(() => tool.QueryAsync(database, "SELECT pg_sleep(5)", CancellationToken.None));
        Assert.Contains("statement timeout", slow.Message);
        Assert.Equal("count\n50\n(1 rows)", (await tool.QueryAsync(database, "SELECT count(*) FROM items", CancellationToken.None)).ReplaceLineEndings("\n"));
        await using var check = new NpgsqlConnection(database);
        await check.OpenAsync();
        Assert.Equal(50L, await new NpgsqlCommand("SELECT count(*) FROM items", check).ExecuteScalarAsync());
    }

    [Fact]
    public void File_paths_cannot_leave_the_workspace()
    {
        var root = Directory.CreateTempSubdirectory("aspireai-ws-").FullName;
        try
        {
            Directory.CreateDirectory(Path.Combine(root, "sub"));
            Assert.Equal(Path.Combine(root, "sub", "a.txt"), WorkspaceFileTools.Resolve(root, "sub/a.txt"));
            Assert.Throws<ToolException>(() => WorkspaceFileTools.Resolve(root, "../escape.txt"));
            Assert.Throws<ToolException>(() => WorkspaceFileTools.Resolve(root, "/etc/passwd"));
            File.CreateSymbolicLink(Path.Combine(root, "link"), "/etc");
            var error = Assert.Throws<ToolException>(() => WorkspaceFileTools.Resolve(root, "link/passwd"));
            Assert.Contains("link", error.Message);
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
    }
}
