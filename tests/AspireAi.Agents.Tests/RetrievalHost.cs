using AspireAi.Inference.Embeddings;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.Extensions.Logging;

namespace AspireAi.Agents.Tests;

/// <summary>The real Retrieval app in process over a real PostgreSQL database, embedding through <paramref name="embeddingsAddress"/>.</summary>
public sealed class RetrievalHost(string connectionString, string embeddingsAddress) : WebApplicationFactory<AspireAi.Retrieval.RetrievalOptions>
{
    protected override void ConfigureWebHost(IWebHostBuilder builder)
    {
        builder.UseSetting("ConnectionStrings:retrievaldb", connectionString);
        builder.UseSetting("services:inference:http:0", embeddingsAddress);
        builder.ConfigureLogging(logging => logging.SetMinimumLevel(LogLevel.Warning));
    }
}

/// <summary>Inference's real embeddings endpoint (all-MiniLM-L6-v2 on ONNX Runtime) on loopback Kestrel, as Retrieval reaches it.</summary>
public sealed class EmbeddingServer : IAsyncLifetime
{
    private Microsoft.AspNetCore.Builder.WebApplication? _app;

    public string BaseAddress { get; private set; } = "";

    public async ValueTask InitializeAsync()
    {
        var builder = Microsoft.AspNetCore.Builder.WebApplication.CreateSlimBuilder();
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.AddEmbeddings();
        _app = builder.Build();
        _app.MapEmbeddingEndpoints();
        await _app.StartAsync();
        BaseAddress = _app.Urls.First().TrimEnd('/');
    }

    public async ValueTask DisposeAsync()
    {
        if (_app is not null)
        {
            await _app.DisposeAsync();
        }
    }
}
