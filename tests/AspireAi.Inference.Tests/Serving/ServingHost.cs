using System.ClientModel;
using AspireAi.Inference.Cli;
using AspireAi.Inference.Serving;
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

    private ServingHost(WebApplication app, Uri address)
    {
        _app = app;
        Address = address;
        Http = new HttpClient { BaseAddress = address, Timeout = TimeSpan.FromMinutes(2) };
    }

    public Uri Address { get; }

    public HttpClient Http { get; }

    public ServedModel Model => _app.Services.GetRequiredService<ServedModel>();

    public static async Task<ServingHost> StartAsync(string modelPath, params string[] flags)
    {
        var app = ServeCommand.Build(["--model", modelPath, "--urls", "http://127.0.0.1:0", "--threads", "2", "--Logging:LogLevel:Default=Warning", .. flags]);
        await app.StartAsync(TestContext.Current.CancellationToken);
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        return new ServingHost(app, new Uri(address));
    }

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
    }
}
