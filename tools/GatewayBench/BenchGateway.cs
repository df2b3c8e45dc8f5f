using AspireAi.Gateway;
using Microsoft.AspNetCore.Mvc.Testing;

namespace AspireAi.GatewayBench;

/// <summary>The gateway's real Program (auth, limits, validation, cache, routing) on Kestrel, in this process.</summary>
internal sealed class BenchGateway(IReadOnlyDictionary<string, string?> settings, int port) : WebApplicationFactory<GatewayOptions>
{
    public string Address => $"http://127.0.0.1:{port}";

    public BenchGateway Start()
    {
        // Outside a test project WebApplicationFactory cannot find the gateway's folder by itself; it reads this variable first.
        Environment.SetEnvironmentVariable("ASPNETCORE_TEST_CONTENTROOT_ASPIREAI_GATEWAY", GatewayFolder());
        UseKestrel(port);
        StartServer();
        return this;
    }

    private static string GatewayFolder()
    {
        var directory = new DirectoryInfo(AppContext.BaseDirectory);
        while (directory is not null && !File.Exists(Path.Combine(directory.FullName, "AspireAi.sln")))
        {
            directory = directory.Parent;
        }

        return Path.Combine(directory?.FullName ?? throw new InvalidOperationException("Run GatewayBench from the repository (AspireAi.sln not found)."), "Gateway");
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
