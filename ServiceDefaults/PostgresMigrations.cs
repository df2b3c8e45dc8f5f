using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Npgsql;

namespace Microsoft.Extensions.Hosting;

/// <summary>One forward-only schema change, identified by a stable id (e.g. <c>"0001_api_keys"</c>).</summary>
public sealed record Migration(string Id, string Sql);

/// <summary>Applies a service's schema migrations at start-up, idempotently and once across replicas.</summary>
public static class PostgresMigrationsExtensions
{
    /// <summary>
    /// Runs <paramref name="migrations"/> in order before the service starts serving. Each runs in its own transaction
    /// and is recorded in <c>schema_migrations</c>; an advisory lock keeps two replicas from applying the same one.
    /// Requires an <see cref="NpgsqlDataSource"/> registered (e.g. by <c>AddNpgsqlDataSource</c>).
    /// </summary>
    public static IServiceCollection AddPostgresMigrations(this IServiceCollection services, params Migration[] migrations)
    {
        services.AddHostedService(sp => new PostgresMigrator(
            sp.GetRequiredService<NpgsqlDataSource>(), migrations, sp.GetRequiredService<ILogger<PostgresMigrator>>()));
        return services;
    }
}

internal sealed class PostgresMigrator(NpgsqlDataSource dataSource, IReadOnlyList<Migration> migrations, ILogger<PostgresMigrator> logger)
    : IHostedService
{
    // Any constant shared by every AspireAi service: the lock only serialises migrators of one database.
    private const long AdvisoryLockKey = 0x417370697265_4169;

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        await using var connection = await OpenWithRetryAsync(cancellationToken);
        await Execute(connection, null, $"SELECT pg_advisory_lock({AdvisoryLockKey})", cancellationToken);
        try
        {
            await Execute(connection, null,
                "CREATE TABLE IF NOT EXISTS schema_migrations (id text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())",
                cancellationToken);
            foreach (var migration in migrations)
            {
                await using var tx = await connection.BeginTransactionAsync(cancellationToken);
                await using var check = new NpgsqlCommand("SELECT 1 FROM schema_migrations WHERE id = $1", connection, tx);
                check.Parameters.AddWithValue(migration.Id);
                if (await check.ExecuteScalarAsync(cancellationToken) is not null)
                {
                    continue;
                }

                await Execute(connection, tx, migration.Sql, cancellationToken);
                await using var record = new NpgsqlCommand("INSERT INTO schema_migrations (id) VALUES ($1)", connection, tx);
                record.Parameters.AddWithValue(migration.Id);
                await record.ExecuteNonQueryAsync(cancellationToken);
                await tx.CommitAsync(cancellationToken);
                logger.LogInformation("Applied schema migration {MigrationId}", migration.Id);
            }
        }
        finally
        {
            await Execute(connection, null, $"SELECT pg_advisory_unlock({AdvisoryLockKey})", CancellationToken.None);
        }
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    /// <summary>The database may still be starting when the service does (WaitFor covers the AppHost, not a restart).</summary>
    private async Task<NpgsqlConnection> OpenWithRetryAsync(CancellationToken cancellationToken)
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                return await dataSource.OpenConnectionAsync(cancellationToken);
            }
            catch (NpgsqlException ex) when (attempt < 30 && ex.IsTransient)
            {
                logger.LogWarning("PostgreSQL not reachable yet (attempt {Attempt}): {Message}", attempt, ex.Message);
                await Task.Delay(TimeSpan.FromSeconds(1), cancellationToken);
            }
        }
    }

    private static async Task Execute(NpgsqlConnection connection, NpgsqlTransaction? tx, string sql, CancellationToken ct)
    {
        await using var command = new NpgsqlCommand(sql, connection, tx);
        await command.ExecuteNonQueryAsync(ct);
    }
}
