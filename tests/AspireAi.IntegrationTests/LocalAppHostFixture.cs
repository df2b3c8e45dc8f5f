using System.Net.Http.Headers;
using Aspire.Hosting;
using Aspire.Hosting.ApplicationModel;

namespace AspireAi.IntegrationTests;

/// <summary>
/// Boots the whole AppHost in local mode once for the test class: real redis-server and PostgreSQL from this machine's
/// binaries, every service as a real process (inference as two replicas behind the gateway), data in a throwaway state folder.
/// </summary>
public sealed class LocalAppHostFixture : IAsyncLifetime
{
    public const string MasterKey = "sk-aspireai-integration-test-master-key";

    private readonly string _stateDirectory = Directory.CreateTempSubdirectory("aspireai-it-").FullName;

    /// <summary>The inference replicas (<c>--inference-replicas 2</c>).</summary>
    public static readonly string[] InferenceReplicas = ["inference-0", "inference-1"];

    /// <summary>Every resource of the deployment diagram (Aspire adds helper resources of its own, which are not waited for).</summary>
    public static readonly string[] Resources =
        ["redis", "postgres", "gatewaydb", "agentsdb", "retrievaldb", .. InferenceReplicas, "retrieval", "agents", "gateway"];


    public DistributedApplication App { get; private set; } = null!;

    public int GatewayPort { get; } = FreeTcpPort();

    public async ValueTask InitializeAsync()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(5));
        var builder = await DistributedApplicationTestingBuilder.CreateAsync<Projects.AppHost>(
            [
                "--infra", "local",
                "--state-dir", _stateDirectory,
                "--inference-replicas", "2",
                "--gateway-port", GatewayPort.ToString(System.Globalization.CultureInfo.InvariantCulture),
                // The shared stories15M beside the checkout (as in CI): no download, and a real trained model's text.
                "--model", RepositoryPaths.SharedModel("stories15M-q8_0.gguf"),
                $"--Parameters:gateway-master-key={MasterKey}",
                "--ASPIRE_ALLOW_UNSECURED_TRANSPORT=true",
                // The testing builder moves fixed ports to random ones; keep them, so --gateway-port itself is under test.
                "--DcpPublisher:RandomizePorts=false",
            ],
            (options, _) => options.DisableDashboard = true,
            timeout.Token);
        App = await builder.BuildAsync(timeout.Token);
        await App.StartAsync(timeout.Token);
        foreach (var resource in Resources)
        {
            await App.ResourceNotifications.WaitForResourceHealthyAsync(resource, timeout.Token);
        }
    }

    /// <summary>A client for the gateway's public endpoint, authenticated with the master key.</summary>
    public HttpClient CreateGatewayClient(bool authenticated = true)
    {
        var client = new HttpClient { BaseAddress = new Uri($"http://localhost:{GatewayPort}") };
        if (authenticated)
        {
            client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", MasterKey);
        }

        return client;
    }

    public async ValueTask DisposeAsync()
    {
        if (App is not null)
        {
            await App.DisposeAsync();
        }

        try
        {
            Directory.Delete(_stateDirectory, recursive: true);
        }
        catch (IOException)
        {
            // PostgreSQL may still be flushing as it exits; the temp folder is reclaimed by the OS either way.
        }
    }

    private static int FreeTcpPort()
    {
        using var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        listener.Start();
        return ((System.Net.IPEndPoint)listener.LocalEndpoint).Port;
    }
}

/// <summary>One AppHost boot (about a minute on two cores) shared by every test class that needs the whole system.</summary>
[CollectionDefinition(Name)]
public sealed class LocalAppHostCollection : ICollectionFixture<LocalAppHostFixture>
{
    public const string Name = "local AppHost";
}
