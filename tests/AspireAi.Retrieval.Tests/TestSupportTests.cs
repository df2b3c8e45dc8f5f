using System.Net.Sockets;
using System.Text;
using AspireAi.TestSupport;
using Npgsql;

namespace AspireAi.Retrieval.Tests;

/// <summary>The shared server fixtures work as the other services' test projects will use them.</summary>
public sealed class TestSupportTests(PostgresServer postgres)
{
    [Fact]
    public async Task Each_database_from_the_PostgreSQL_fixture_is_fresh_and_separate()
    {
        var first = await postgres.CreateDatabaseAsync("support");
        var second = await postgres.CreateDatabaseAsync("support");
        Assert.NotEqual(first, second);
        await using (var one = new NpgsqlConnection(first))
        {
            await one.OpenAsync();
            await new NpgsqlCommand("CREATE TABLE t (x int); INSERT INTO t VALUES (42)", one).ExecuteNonQueryAsync();
            Assert.Equal(42, await new NpgsqlCommand("SELECT x FROM t", one).ExecuteScalarAsync());
        }

        await using var two = new NpgsqlConnection(second);
        await two.OpenAsync();
        Assert.Null(await new NpgsqlCommand("SELECT to_regclass('t')::text", two).ExecuteScalarAsync() as string);
    }

    [Fact]
    public async Task The_Redis_fixture_serves_commands_and_is_gone_after_dispose()
    {
        var redis = new RedisServer();
        await redis.InitializeAsync();
        var port = redis.Port;
        try
        {
            Assert.Equal("+OK", await SendAsync(port, "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nvalue\r\n"));
            Assert.Equal("$5\r\nvalue", await SendAsync(port, "*2\r\n$3\r\nGET\r\n$1\r\nk\r\n"));
        }
        finally
        {
            await redis.DisposeAsync();
        }

        await Assert.ThrowsAnyAsync<SocketException>(() => SendAsync(port, "PING\r\n"));
    }

    private static async Task<string> SendAsync(int port, string command)
    {
        using var client = new TcpClient();
        await client.ConnectAsync("127.0.0.1", port);
        var stream = client.GetStream();
        await stream.WriteAsync(Encoding.ASCII.GetBytes(command));
        var buffer = new byte[256];
        var read = await stream.ReadAsync(buffer);
        return Encoding.ASCII.GetString(buffer, 0, read).TrimEnd('\r', '\n');
    }
}
