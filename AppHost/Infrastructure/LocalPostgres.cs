using Microsoft.Extensions.DependencyInjection;
using System.Diagnostics;
using System.Globalization;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Npgsql;

namespace AspireAi.AppHost.Infrastructure;

/// <summary>
/// PostgreSQL run from this machine's <c>postgres</c>: <c>initdb</c> once into the state folder, then the server on a free
/// loopback port (TCP only, password auth). PostgreSQL refuses to run as root, so as root both run as the <c>postgres</c> user.
/// </summary>
internal sealed class LocalPostgresServerResource(string name, string command, string workingDirectory, ParameterResource password, int port)
    : ExecutableResource(name, command, workingDirectory), IResourceWithConnectionString
{
    public ParameterResource Password { get; } = password;

    public int Port { get; } = port;

    public List<LocalPostgresDatabaseResource> Databases { get; } = [];

    public ReferenceExpression ConnectionStringExpression => ReferenceExpression.Create(
        $"Host=127.0.0.1;Port={Port.ToString(CultureInfo.InvariantCulture)};Username=postgres;Password={Password}");
}

/// <summary>A database on the local server; its connection string is the server's plus <c>Database=</c>.</summary>
internal sealed class LocalPostgresDatabaseResource(string name, string databaseName, LocalPostgresServerResource parent)
    : Resource(name), IResourceWithParent<LocalPostgresServerResource>, IResourceWithConnectionString
{
    public LocalPostgresServerResource Parent { get; } = parent;

    public string DatabaseName { get; } = databaseName;

    public ReferenceExpression ConnectionStringExpression =>
        ReferenceExpression.Create($"{Parent};Database={DatabaseName}");
}

internal static class LocalPostgresExtensions
{
    private const string ServiceUser = "postgres";

    public static IResourceBuilder<LocalPostgresServerResource> AddLocalPostgres(
        this IDistributedApplicationBuilder builder, string name, string stateDirectory)
    {
        var folders = LocalBinaries.PostgresFolders().ToArray();
        var postgres = LocalBinaries.Require("postgres", "postgresql", "PostgreSQL", folders);
        var initdb = LocalBinaries.Require("initdb", "postgresql", "PostgreSQL", folders);
        var runAsServiceUser = Environment.IsPrivilegedProcess && !OperatingSystem.IsWindows();
        var setpriv = runAsServiceUser ? LocalBinaries.Require("setpriv", "util-linux", "PostgreSQL as the postgres user") : null;

        var password = builder.AddParameter($"{name}-password",
            new GenerateParameterDefault { MinLength = 24, Special = false }, secret: true, persist: true);
        var dataDirectory = Path.Combine(stateDirectory, "postgres");
        var port = FreePort.Next();
        var resource = new LocalPostgresServerResource(name, setpriv ?? postgres, stateDirectory, password.Resource, port);

        var healthCheckKey = $"{name}-databases";
        builder.Services.AddHealthChecks().Add(new HealthCheckRegistration(
            healthCheckKey, _ => new LocalPostgresReadyCheck(resource), failureStatus: null, tags: null));

        return builder.AddResource(resource)
            .WithEndpoint(port: port, targetPort: port, scheme: "tcp", name: "tcp", isProxied: false)
            .WithHealthCheck(healthCheckKey)
            .WithArgs(async context =>
            {
                await InitializeDataDirectoryAsync(initdb, setpriv, stateDirectory, dataDirectory,
                    await password.Resource.GetValueAsync(context.CancellationToken) ?? "", context.CancellationToken);
                if (setpriv is not null)
                {
                    context.Args.Add($"--reuid={ServiceUser}");
                    context.Args.Add($"--regid={ServiceUser}");
                    context.Args.Add("--init-groups");
                    context.Args.Add(postgres);
                }

                context.Args.Add("-D");
                context.Args.Add(dataDirectory);
                context.Args.Add("-p");
                context.Args.Add(port.ToString(CultureInfo.InvariantCulture));
                context.Args.Add("-c");
                context.Args.Add("listen_addresses=127.0.0.1");
                // TCP only: the default socket folder (/var/run/postgresql) is not writable by every user.
                context.Args.Add("-c");
                context.Args.Add("unix_socket_directories=");
            })
            .OnResourceReady(async (server, ready, ct) =>
            {
                var notifications = ready.Services.GetRequiredService<ResourceNotificationService>();
                foreach (var database in server.Databases)
                {
                    await notifications.PublishUpdateAsync(database, s => s with
                    {
                        State = KnownResourceStates.Running,
                        Properties = [.. s.Properties, new("database", database.DatabaseName)],
                    });
                }
            });
    }

    public static IResourceBuilder<LocalPostgresDatabaseResource> AddDatabase(
        this IResourceBuilder<LocalPostgresServerResource> server, string name)
    {
        var database = new LocalPostgresDatabaseResource(name, name, server.Resource);
        server.Resource.Databases.Add(database);
        return server.ApplicationBuilder.AddResource(database)
            .WithInitialState(new CustomResourceSnapshot
            {
                ResourceType = "PostgresDatabase",
                State = KnownResourceStates.Waiting,
                Properties = [],
            });
    }

    /// <summary>Runs <c>initdb</c> the first time only: the data folder, and so every database, is kept across runs.</summary>
    private static async Task InitializeDataDirectoryAsync(
        string initdb, string? setpriv, string stateDirectory, string dataDirectory, string password, CancellationToken ct)
    {
        if (File.Exists(Path.Combine(dataDirectory, "PG_VERSION")))
        {
            return;
        }

        Directory.CreateDirectory(dataDirectory);
        var passwordFile = Path.Combine(stateDirectory, ".postgres-initial-password");
        await File.WriteAllTextAsync(passwordFile, password, ct);
        try
        {
            if (setpriv is not null && !OperatingSystem.IsWindows())
            {
                // The postgres user must reach and own its data folder; the password file is read by initdb as that user.
                File.SetUnixFileMode(stateDirectory, File.GetUnixFileMode(stateDirectory) | UnixFileMode.OtherExecute);
                for (var dir = Path.GetDirectoryName(stateDirectory); dir is not null; dir = Path.GetDirectoryName(dir))
                {
                    if (!File.GetUnixFileMode(dir).HasFlag(UnixFileMode.OtherExecute))
                    {
                        throw new AppHostConfigurationException(
                            $"PostgreSQL runs as the '{ServiceUser}' user, who cannot enter '{dir}' on the way to '{stateDirectory}'. " +
                            "Choose a state folder it can reach with --state-dir (the default as root is /var/lib/aspireai).");
                    }
                }

                await RunAsync("chown", ["-R", ServiceUser, dataDirectory, passwordFile], ct);
            }

            if (!OperatingSystem.IsWindows())
            {
                File.SetUnixFileMode(dataDirectory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
            }

            string[] initdbArgs = ["-D", dataDirectory, "--username=postgres", $"--pwfile={passwordFile}",
                "--auth=scram-sha-256", "--encoding=UTF8", "--locale=C.UTF-8"];
            if (setpriv is not null)
            {
                await RunAsync(setpriv, [$"--reuid={ServiceUser}", $"--regid={ServiceUser}", "--init-groups", initdb, .. initdbArgs], ct);
            }
            else
            {
                await RunAsync(initdb, initdbArgs, ct);
            }
        }
        catch
        {
            // Never leave a half-initialised folder behind: the next run would mistake it for a working one.
            Directory.Delete(dataDirectory, recursive: true);
            throw;
        }
        finally
        {
            File.Delete(passwordFile);
        }
    }

    private static async Task RunAsync(string command, IEnumerable<string> args, CancellationToken ct)
    {
        var start = new ProcessStartInfo(command) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync(ct);
        var stderr = process.StandardError.ReadToEndAsync(ct);
        await process.WaitForExitAsync(ct);
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException(
                $"'{command} {string.Join(' ', start.ArgumentList)}' failed with exit code {process.ExitCode}: {await stderr}{await stdout}");
        }
    }
}

/// <summary>
/// Ready means more than "accepts connections": the databases its dependents own exist. They are created here, once,
/// so that a service that waits for the server never starts against a missing database.
/// </summary>
internal sealed class LocalPostgresReadyCheck(LocalPostgresServerResource server) : IHealthCheck
{
    public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        try
        {
            var connectionString = await server.ConnectionStringExpression.GetValueAsync(cancellationToken);
            var builder = new NpgsqlConnectionStringBuilder(connectionString) { Timeout = 3, Pooling = false };
            await using var connection = new NpgsqlConnection(builder.ConnectionString);
            await connection.OpenAsync(cancellationToken);
            foreach (var database in server.Databases)
            {
                await using var exists = new NpgsqlCommand("SELECT 1 FROM pg_database WHERE datname = $1", connection);
                exists.Parameters.AddWithValue(database.DatabaseName);
                if (await exists.ExecuteScalarAsync(cancellationToken) is null)
                {
                    // Identifiers cannot be parameters; database names are our own resource names (letters only).
                    await using var create = new NpgsqlCommand($"CREATE DATABASE \"{database.DatabaseName}\"", connection);
                    await create.ExecuteNonQueryAsync(cancellationToken);
                }
            }

            return HealthCheckResult.Healthy();
        }
        catch (Exception ex) when (ex is NpgsqlException or TimeoutException or System.Net.Sockets.SocketException)
        {
            return HealthCheckResult.Unhealthy(ex.Message);
        }
    }
}
