using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using StackExchange.Redis;

namespace AspireAi.AppHost.Infrastructure;

/// <summary>Redis run from this machine's <c>redis-server</c>, on a free loopback port, with its data under the state folder.</summary>
internal sealed class LocalRedisResource(string name, string command, string workingDirectory, ParameterResource password, int port)
    : ExecutableResource(name, command, workingDirectory), IResourceWithConnectionString
{
    public ParameterResource Password { get; } = password;

    public int Port { get; } = port;

    // Local mode is loopback-only by definition; naming 127.0.0.1 avoids "localhost" resolving to ::1 first.
    public ReferenceExpression ConnectionStringExpression =>
        ReferenceExpression.Create($"127.0.0.1:{Port.ToString(System.Globalization.CultureInfo.InvariantCulture)},password={Password}");
}

internal static class LocalRedisExtensions
{
    public static IResourceBuilder<LocalRedisResource> AddLocalRedis(
        this IDistributedApplicationBuilder builder, string name, string stateDirectory)
    {
        var redisServer = LocalBinaries.Require("redis-server", "redis-server", "Redis");
        var password = builder.AddParameter($"{name}-password",
            new GenerateParameterDefault { MinLength = 24, Special = false }, secret: true, persist: true);
        var dataDirectory = Path.Combine(stateDirectory, "redis");
        var port = FreePort.Next();
        var resource = new LocalRedisResource(name, redisServer, dataDirectory, password.Resource, port);

        var healthCheckKey = $"{name}-ping";
        builder.Services.AddHealthChecks().Add(new HealthCheckRegistration(
            healthCheckKey, _ => new RedisPingHealthCheck(resource), failureStatus: null, tags: null));

        return builder.AddResource(resource)
            .WithEndpoint(port: port, targetPort: port, scheme: "tcp", name: "tcp", isProxied: false)
            .WithHealthCheck(healthCheckKey)
            .WithArgs(async context =>
            {
                // The password goes in through a config file readable only by us, not on the command line (visible in ps).
                var configFile = Path.Combine(dataDirectory, "aspireai-redis.conf");
                Directory.CreateDirectory(dataDirectory);
                await File.WriteAllTextAsync(configFile,
                    $"requirepass {await password.Resource.GetValueAsync(context.CancellationToken)}\n", context.CancellationToken);
                if (!OperatingSystem.IsWindows())
                {
                    File.SetUnixFileMode(configFile, UnixFileMode.UserRead | UnixFileMode.UserWrite);
                }

                context.Args.Add(configFile);
                context.Args.Add("--port");
                context.Args.Add(port.ToString(System.Globalization.CultureInfo.InvariantCulture));
                context.Args.Add("--bind");
                context.Args.Add("127.0.0.1");
                context.Args.Add("--dir");
                context.Args.Add(dataDirectory);
                // Snapshot at most once a minute when something changed: the gateway's counters and cache survive a restart.
                context.Args.Add("--save");
                context.Args.Add("60 1");
            });
    }
}

internal sealed class RedisPingHealthCheck(LocalRedisResource resource) : IHealthCheck
{
    public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        try
        {
            var connectionString = await resource.ConnectionStringExpression.GetValueAsync(cancellationToken);
            var options = ConfigurationOptions.Parse(connectionString!);
            options.AbortOnConnectFail = true;
            options.ConnectTimeout = 2000;
            await using var connection = await ConnectionMultiplexer.ConnectAsync(options);
            await connection.GetDatabase().PingAsync();
            return HealthCheckResult.Healthy();
        }
        catch (Exception ex) when (ex is RedisException or TimeoutException)
        {
            return HealthCheckResult.Unhealthy(ex.Message);
        }
    }
}
