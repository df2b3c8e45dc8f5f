extern alias agents;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.Extensions.Logging;

namespace AspireAi.Gateway.Tests.Support;

/// <summary>
/// A real app of this repository (its own Program, middleware, hosted services) listening on a loopback port, as the gateway
/// reaches services in production. Disposing it stops it: that is how tests kill a replica.
/// </summary>
public class LoopbackApp<TEntryPoint>(IReadOnlyDictionary<string, string?> settings) : WebApplicationFactory<TEntryPoint>
    where TEntryPoint : class
{
    private ReservedPort? _port;
    private string? _address;

    /// <summary>
    /// Where the app listens. Read before <see cref="Start"/> (a test that points the gateway at a replica before it is
    /// up), it reserves a port now, which Start releases and binds; otherwise Start binds port 0 and the kernel's choice
    /// is read back.
    /// </summary>
    public string Address => _address ??= $"http://127.0.0.1:{(_port ??= new ReservedPort()).Port}";

    public void Start()
    {
        if (_port is { } reserved)
        {
            reserved.Release();
            UseKestrel(reserved.Port);
            StartServer();
            return;
        }

        _address = this.StartOnAnyPort();
    }

    /// <summary>Starts <paramref name="app"/> and returns it.</summary>
    public static T Started<T>(T app) where T : LoopbackApp<TEntryPoint>
    {
        app.Start();
        return app;
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _port?.Dispose();  // read but never started
        }

        base.Dispose(disposing);
    }

    protected override void ConfigureWebHost(IWebHostBuilder builder)
    {
        foreach (var (key, value) in settings)
        {
            builder.UseSetting(key, value);
        }

        builder.ConfigureLogging(logging => logging
            .SetMinimumLevel(LogLevel.Warning)
            .AddFilter("Polly", LogLevel.None)
            .AddFilter("StackExchange.Redis", LogLevel.None) // the Redis outage test would print every reconnect attempt
            .AddFilter("System.Net.Http.HttpClient", LogLevel.Error)
            .AddFilter("Yarp", LogLevel.Error)
            .AddFilter("AspireAi.Gateway.Redis.RedisGuard", LogLevel.Error)
            .AddFilter("AspireAi.Gateway.Replicas", LogLevel.Error)
            .AddFilter("AspireAi.Gateway.Routing", LogLevel.Error));
    }
}

/// <summary>The real Inference app: <c>/v1/models</c> and <c>/v1/embeddings</c> (all-MiniLM-L6-v2 on ONNX Runtime, CPU).</summary>
public sealed class InferenceApp(string? servedModelName = null) : LoopbackApp<AspireAi.Inference.Embeddings.EmbeddingOptions>(
    new Dictionary<string, string?> { ["Inference:ServedModelName"] = servedModelName, ["Inference:Embeddings:Threads"] = "1" });

/// <summary>The real Retrieval app over its own database, calling embeddings at <paramref name="inference"/>.</summary>
public sealed class RetrievalApp(string database, string inference) : LoopbackApp<AspireAi.Retrieval.RetrievalOptions>(
    new Dictionary<string, string?> { ["ConnectionStrings:retrievaldb"] = database, ["services:inference:http:0"] = inference });

/// <summary>The real Agents app over its own database.</summary>
public sealed class AgentsApp(string database) : LoopbackApp<agents::Program>(
    new Dictionary<string, string?> { ["ConnectionStrings:agentsdb"] = database });
