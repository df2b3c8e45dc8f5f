using AspireAi.Inference.Cli;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;

namespace AspireAi.Gateway.Tests.Support;

/// <summary>
/// Inference replicas of one deployment (<c>stories</c>: the real serving engine on the shared stories15M, each replica with
/// its own state folder, as the AppHost runs them) and a gateway whose only inference deployment is that one.
/// </summary>
public sealed class BatchEngines : IAsyncDisposable
{
    public const string Model = "stories-batch";

    /// <summary>An alias of <see cref="Model"/> in the gateway's configuration.</summary>
    public const string Alias = "gpt-4o-mini";

    private readonly string _temp = Path.Combine(Path.GetTempPath(), "aspireai-batches-" + Guid.NewGuid().ToString("N"));
    private readonly List<WebApplication?> _replicas = [];

    public GatewayApp Gateway { get; private set; } = null!;

    /// <summary>Each replica's own address (tests call a replica directly to see where an id lives).</summary>
    public IReadOnlyList<string> Addresses { get; private set; } = [];

    public static async Task<BatchEngines> StartAsync(TestStack stack, int replicas)
    {
        var engines = new BatchEngines();
        Directory.CreateDirectory(engines._temp);
        for (var i = 0; i < replicas; i++)
        {
            var app = ServeCommand.Build(["--model", RepositoryPaths.SharedModel("stories15M-q8_0.gguf"), "--served-model-name", Model,
                "--urls", "http://127.0.0.1:0", "--threads", "1", "--kv-cache-tokens", "2048", "--max-num-seqs", "4",
                "--max-batched-tokens", "256", "--state-dir", Path.Combine(engines._temp, $"replica-{i}"), "--Logging:LogLevel:Default=Warning"]);
            await app.StartAsync(TestContext.Current.CancellationToken);
            engines._replicas.Add(app);
        }

        engines.Addresses = [.. engines._replicas.Select(app => app!.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First())];
        engines.Gateway = engines.StartGateway(stack);
        return engines;
    }

    /// <summary>A gateway in front of these replicas (with <paramref name="extra"/> settings, e.g. JWT validation); the caller disposes it.</summary>
    public GatewayApp StartGateway(TestStack stack, IReadOnlyDictionary<string, string?>? extra = null)
    {
        var settings = new Dictionary<string, string?>
        {
            // Only this deployment: the shared stack's others would be asked for their files and batches too.
            ["Gateway:Deployments:inference"] = null,
            ["Gateway:Deployments:scripted"] = null,
            ["Gateway:Deployments:stories"] = "http://stories",
            [$"Gateway:Models:Aliases:{Alias}"] = Model,
        };
        for (var i = 0; i < Addresses.Count; i++)
        {
            settings[$"services:stories:http:{i}"] = Addresses[i];
        }

        foreach (var (name, value) in extra ?? new Dictionary<string, string?>())
        {
            settings[name] = value;
        }

        return GatewayApp.Start(stack, settings);
    }

    /// <summary>Stops replica <paramref name="index"/> (its address then refuses connections): a replica that is down.</summary>
    public async Task StopAsync(int index)
    {
        if (_replicas[index] is { } app)
        {
            _replicas[index] = null;
            await app.StopAsync(CancellationToken.None);
            await app.DisposeAsync();
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (Gateway is not null)
        {
            await Gateway.DisposeAsync();
        }

        for (var i = 0; i < _replicas.Count; i++)
        {
            await StopAsync(i);
        }

        Directory.Delete(_temp, recursive: true);
    }
}

/// <summary>Two replicas and their gateway, started by the first test of the class that asks (tests of a class run one at a time).</summary>
public sealed class TwoBatchReplicas : IAsyncDisposable
{
    private BatchEngines? _engines;

    public async Task<BatchEngines> GetAsync(TestStack stack) => _engines ??= await BatchEngines.StartAsync(stack, replicas: 2);

    public ValueTask DisposeAsync() => _engines?.DisposeAsync() ?? ValueTask.CompletedTask;
}
