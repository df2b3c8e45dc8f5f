using System.Collections.Concurrent;
using AspireAi.Inference.Embeddings;
using AspireAi.TestSupport;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

[assembly: AssemblyFixture(typeof(PostgresServer))]
[assembly: AssemblyFixture(typeof(AspireAi.Retrieval.Tests.EmbeddingServer))]

namespace AspireAi.Retrieval.Tests;

/// <summary>
/// Inference's real embeddings endpoint (all-MiniLM-L6-v2 on ONNX Runtime, CPU) served over loopback HTTP by Kestrel, as
/// Retrieval reaches it in production. It also serves <c>/files/{name}</c> from <see cref="Files"/> for ingestion by URL.
/// </summary>
public sealed class EmbeddingServer : IAsyncLifetime
{
    private readonly ReservedPort _port;
    private WebApplication? _app;

    public EmbeddingServer() : this(new ReservedPort())
    {
    }

    /// <summary>A server for the port a test has held so far (it takes the reservation over and releases it to bind).</summary>
    internal EmbeddingServer(ReservedPort port) => _port = port;

    public int Port => _port.Port;

    public string BaseAddress => $"http://127.0.0.1:{Port}";

    /// <summary>Documents served at <c>/files/{name}</c>: (content type, bytes).</summary>
    public ConcurrentDictionary<string, (string ContentType, byte[] Content)> Files { get; } = new();

    public async ValueTask InitializeAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        builder.WebHost.UseUrls(BaseAddress);
        builder.AddEmbeddings();
        _app = builder.Build();
        _app.MapEmbeddingEndpoints();
        _app.MapGet("/files/{name}", (string name) => Files.TryGetValue(name, out var file)
            ? Results.Bytes(file.Content, file.ContentType)
            : Results.NotFound());
        _port.Release();  // Kestrel binds it next
        await _app.StartAsync();
    }

    public async ValueTask DisposeAsync()
    {
        _port.Dispose();
        if (_app is not null)
        {
            await _app.DisposeAsync();
        }
    }
}
