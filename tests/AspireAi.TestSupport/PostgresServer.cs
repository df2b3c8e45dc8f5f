using System.Diagnostics;
using System.Globalization;
using System.Text;
using Npgsql;

namespace AspireAi.TestSupport;

/// <summary>
/// A throwaway PostgreSQL server for a test run: <c>initdb</c> into a temporary folder, <c>postgres</c> on a free loopback
/// port (TCP only), a database per test class from <see cref="CreateDatabaseAsync"/>, everything stopped and deleted on
/// dispose. Use it as an assembly fixture (<c>[assembly: AssemblyFixture(typeof(PostgresServer))]</c>) and take it in
/// a test class's constructor. As root (CI, containers) both programs run as the <c>postgres</c> user through
/// <c>setpriv</c>, since PostgreSQL refuses to run as root.
/// </summary>
public sealed class PostgresServer : IAsyncLifetime
{
    private const string ServiceUser = "postgres";
    private static int _databases;
    private Process? _process;
    private StringBuilder? _output;
    private string? _folder;

    public int Port { get; private set; }

    /// <summary>The connection string of the <c>postgres</c> maintenance database (superuser, no password).</summary>
    public string AdminConnectionString => $"Host=127.0.0.1;Port={Port};Username=postgres;Database=postgres;Pooling=false";

    public async ValueTask InitializeAsync()
    {
        var folders = PostgresBinFolders();
        var initdb = LocalServerProcess.Find("initdb", folders);
        var postgres = LocalServerProcess.Find("postgres", folders);
        if (initdb is null || postgres is null)
        {
            throw new InvalidOperationException(
                "These tests need a real PostgreSQL server, and 'initdb'/'postgres' were found neither on PATH nor in /usr/lib/postgresql/*/bin. " +
                "Install it (Debian/Ubuntu: apt-get install -y postgresql) and run the tests again.");
        }

        string? setpriv = null;
        if (LocalServerProcess.RunningAsRoot)
        {
            setpriv = LocalServerProcess.Find("setpriv", ["/usr/bin", "/bin"])
                ?? throw new InvalidOperationException("Running as root: PostgreSQL must run as the 'postgres' user through 'setpriv' (util-linux), which is missing.");
        }

        _folder = Directory.CreateTempSubdirectory("aspireai-test-pg-").FullName;
        var data = Path.Combine(_folder, "data");
        if (setpriv is not null)
        {
            // The postgres user must own the folder (initdb creates data/ in it); /tmp itself is world-searchable.
            await LocalServerProcess.RunAsync("chown", [$"{ServiceUser}:{ServiceUser}", _folder]);
        }

        string[] initdbArgs = ["-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-locale", "--no-sync"];
        await LocalServerProcess.RunAsync(setpriv ?? initdb, setpriv is null ? initdbArgs : [.. AsServiceUser(initdb), .. initdbArgs]);

        Port = LocalServerProcess.FreePort();
        string[] serverArgs =
        [
            "-D", data, "-p", Port.ToString(CultureInfo.InvariantCulture),
            "-c", "listen_addresses=127.0.0.1",
            "-c", "unix_socket_directories=", // TCP only: the default socket folder may not be writable
            // Durability is pointless for a throwaway server and costs seconds per test run.
            "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
            "-c", "max_connections=200",
        ];
        (_process, _output) = LocalServerProcess.Start(setpriv ?? postgres, setpriv is null ? serverArgs : [.. AsServiceUser(postgres), .. serverArgs]);
        await WaitUntilReadyAsync();
    }

    /// <summary>Creates a fresh, empty database and returns its connection string.</summary>
    public async Task<string> CreateDatabaseAsync(string prefix = "test")
    {
        var name = new string([.. prefix.ToLowerInvariant().Where(c => char.IsAsciiLetterOrDigit(c) || c == '_').Take(40)])
                   + "_" + Interlocked.Increment(ref _databases).ToString(CultureInfo.InvariantCulture);
        await using var connection = new NpgsqlConnection(AdminConnectionString);
        await connection.OpenAsync();
        await using var create = new NpgsqlCommand($"CREATE DATABASE \"{name}\"", connection);
        await create.ExecuteNonQueryAsync();
        return $"Host=127.0.0.1;Port={Port.ToString(CultureInfo.InvariantCulture)};Username=postgres;Database={name}";
    }

    public async ValueTask DisposeAsync()
    {
        NpgsqlConnection.ClearAllPools();
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

    private static string[] AsServiceUser(string program) =>
        [$"--reuid={ServiceUser}", $"--regid={ServiceUser}", "--init-groups", program];

    private async Task WaitUntilReadyAsync()
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (true)
        {
            if (_process!.HasExited)
            {
                throw new InvalidOperationException($"PostgreSQL exited with code {_process.ExitCode} while starting:\n{LocalServerProcess.Snapshot(_output!)}");
            }

            try
            {
                await using var connection = new NpgsqlConnection(AdminConnectionString + ";Timeout=2");
                await connection.OpenAsync();
                return;
            }
            catch (Exception ex) when (ex is NpgsqlException or System.Net.Sockets.SocketException && DateTime.UtcNow < deadline)
            {
                await Task.Delay(100);
            }
        }
    }

    /// <summary>Debian and Ubuntu keep the server binaries off PATH, in /usr/lib/postgresql/VERSION/bin (newest first).</summary>
    private static IEnumerable<string> PostgresBinFolders()
    {
        const string root = "/usr/lib/postgresql";
        return Directory.Exists(root)
            ? Directory.GetDirectories(root).OrderByDescending(d => int.TryParse(Path.GetFileName(d), out var v) ? v : -1).Select(d => Path.Combine(d, "bin"))
            : [];
    }
}
