using AspireAi.Inference.Cli;
using Microsoft.AspNetCore.Builder;

namespace AspireAi.Agents.Tests;

/// <summary>
/// The real Inference serving engine (<c>serve</c>'s own wiring) with the shared stories15M Q8_0 model on a free loopback
/// port: agents reach it as they reach Inference in production, over OpenAI's chat completions API.
/// </summary>
public sealed class EngineServer : IAsyncLifetime
{
    public const string Model = "stories15m";

    private WebApplication? _app;

    public string BaseAddress { get; private set; } = "";

    public async ValueTask InitializeAsync()
    {
        _app = ServeCommand.Build(["--model", ModelFile("stories15M-q8_0.gguf"), "--served-model-name", Model, "--urls", "http://127.0.0.1:0",
            "--threads", "1", "--Logging:LogLevel:Default=Warning"]);
        await _app.StartAsync();
        BaseAddress = _app.Urls.First().TrimEnd('/');
    }

    public async ValueTask DisposeAsync()
    {
        if (_app is not null)
        {
            await _app.StopAsync(CancellationToken.None);
            await _app.DisposeAsync();
        }
    }

    /// <summary>A file of <c>../shared/models</c> beside the repository root (the folder holding AspireAi.sln).</summary>
    private static string ModelFile(string name)
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "AspireAi.sln")))
        {
            dir = dir.Parent;
        }

        var path = Path.GetFullPath(Path.Combine(dir?.FullName ?? throw new InvalidOperationException($"No AspireAi.sln above {AppContext.BaseDirectory}."),
            "..", "shared", "models", name));
        return File.Exists(path) ? path : throw new FileNotFoundException($"The shared test model '{path}' is missing (CI keeps ../shared beside the checkout).", path);
    }
}
