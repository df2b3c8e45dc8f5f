using System.ClientModel;
using AspireAi.Inference.Cli;
using AspireAi.Inference.Serving;
using AspireAi.Inference.Tests.Support;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.DependencyInjection;
using OpenAI;

namespace AspireAi.Inference.Tests.Serving;

/// <summary>The real serving host (<c>serve</c>'s own wiring) on Kestrel at a free loopback port.</summary>
public sealed class ServingHost : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly TempDirectory? _ownState;

    private ServingHost(WebApplication app, Uri address, TempDirectory? ownState)
    {
        _app = app;
        _ownState = ownState;
        Address = address;
        Http = new HttpClient { BaseAddress = address, Timeout = TimeSpan.FromMinutes(2) };
    }

    public Uri Address { get; }

    public HttpClient Http { get; }

    public ServedModel Model => _app.Services.GetRequiredService<ServedModel>();

    /// <summary>Starts a server; its state folder (batches, files) is a fresh temporary one unless <c>--state-dir</c> is among the flags.</summary>
    public static async Task<ServingHost> StartAsync(string modelPath, params string[] flags)
    {
        var ownState = flags.Contains("--state-dir") ? null : new TempDirectory();
        string[] state = ownState is null ? [] : ["--state-dir", ownState.Path];
        var app = ServeCommand.Build(["--model", modelPath, "--urls", "http://127.0.0.1:0", "--threads", "2", "--Logging:LogLevel:Default=Warning", .. state, .. flags]);
        await app.StartAsync(TestContext.Current.CancellationToken);
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        return new ServingHost(app, new Uri(address), ownState);
    }

    /// <summary>Stops the host (as a shutdown does: background work is cancelled) without disposing the model yet.</summary>
    public Task StopAsync() => _app.StopAsync(CancellationToken.None);

    /// <summary>
    /// The lines of a <c>/metrics</c> text for <paramref name="metric"/> that carry <paramref name="model"/>: meters are
    /// process-wide, so every engine of the test process reports there, each series labelled with its model name.
    /// </summary>
    public static IEnumerable<string> Series(string metrics, string metric, string model) =>
        metrics.Split('\n').Where(l => l.StartsWith(metric + "{", StringComparison.Ordinal)
            && l.Contains($"model_name=\"{model}\"", StringComparison.Ordinal));

    /// <summary>The value of a metric line (its last field).</summary>
    public static double Value(string line) =>
        double.Parse(line[(line.LastIndexOf(' ') + 1)..], System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>The OpenAI .NET client, as a Microsoft.Extensions.AI chat client, pointed at this server.</summary>
    public IChatClient OpenAiChatClient() =>
        new OpenAIClient(new ApiKeyCredential("not-checked"), new OpenAIClientOptions { Endpoint = new Uri(Address, "/v1") })
            .GetChatClient(Model.Id)
            .AsIChatClient();

    public async ValueTask DisposeAsync()
    {
        Http.Dispose();
        await _app.StopAsync(CancellationToken.None);
        await _app.DisposeAsync();
        _ownState?.Dispose();
    }
}
