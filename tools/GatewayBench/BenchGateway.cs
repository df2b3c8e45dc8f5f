using AspireAi.Gateway;
using Microsoft.AspNetCore.Mvc.Testing;

namespace AspireAi.GatewayBench;

/// <summary>The gateway's real Program (auth, limits, validation, cache, routing) on Kestrel, in this process.</summary>
internal sealed class BenchGateway(IReadOnlyDictionary<string, string?> settings, int port) : WebApplicationFactory<GatewayOptions>
{
    public string Address => $"http://127.0.0.1:{port}";

    public BenchGateway Start()
    {
        UseKestrel(port);
        StartServer();
        return this;
    }

    protected override void ConfigureWebHost(IWebHostBuilder builder)
    {
        foreach (var (key, value) in settings)
        {
            builder.UseSetting(key, value);
        }

        builder.ConfigureLogging(logging => logging.ClearProviders());
    }
}
