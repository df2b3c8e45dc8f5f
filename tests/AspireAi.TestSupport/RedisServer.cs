using System.Diagnostics;
using System.Globalization;
using System.Net.Sockets;
using System.Text;

namespace AspireAi.TestSupport;

/// <summary>
/// A throwaway <c>redis-server</c> for a test run on a free loopback port, without persistence, stopped on dispose.
/// Use it as an assembly fixture; <see cref="ConnectionString"/> is what StackExchange.Redis takes.
/// </summary>
public sealed class RedisServer : IAsyncLifetime
{
    private Process? _process;
    private StringBuilder? _output;
    private string? _folder;

    public int Port { get; private set; }

    public string ConnectionString => $"127.0.0.1:{Port.ToString(CultureInfo.InvariantCulture)}";

    public async ValueTask InitializeAsync()
    {
        var redis = LocalServerProcess.Find("redis-server", ["/usr/bin", "/usr/local/bin"])
            ?? throw new InvalidOperationException(
                "These tests need a real Redis server, and 'redis-server' is not on PATH. Install it (Debian/Ubuntu: apt-get install -y redis-server).");
        _folder = Directory.CreateTempSubdirectory("aspireai-test-redis-").FullName;
        Port = LocalServerProcess.FreePort();
        (_process, _output) = LocalServerProcess.Start(redis,
        [
            "--port", Port.ToString(CultureInfo.InvariantCulture), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
            "--dir", _folder, "--daemonize", "no",
        ]);

        var deadline = DateTime.UtcNow.AddSeconds(15);
        while (!await PingAsync())
        {
            if (_process.HasExited || DateTime.UtcNow > deadline)
            {
                throw new InvalidOperationException($"redis-server did not start on port {Port}:\n{LocalServerProcess.Snapshot(_output)}");
            }

            await Task.Delay(50);
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_process is not null)
        {
            await LocalServerProcess.StopAsync(_process);
            _process.Dispose();
        }

        if (_folder is not null && Directory.Exists(_folder))
        {
            Directory.Delete(_folder, recursive: true);
        }
    }

    private async Task<bool> PingAsync()
    {
        try
        {
            using var client = new TcpClient();
            await client.ConnectAsync("127.0.0.1", Port);
            var stream = client.GetStream();
            await stream.WriteAsync("PING\r\n"u8.ToArray());
            var buffer = new byte[16];
            var read = await stream.ReadAsync(buffer);
            return Encoding.ASCII.GetString(buffer, 0, read).StartsWith("+PONG", StringComparison.Ordinal);
        }
        catch (SocketException)
        {
            return false;
        }
    }
}
