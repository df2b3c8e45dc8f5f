using AspireAi.Agents.Models;
using AspireAi.Agents.Tools;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Http.Resilience;
using Microsoft.Extensions.Logging;

namespace AspireAi.Agents.Tests;

/// <summary>
/// The real Agents app in process (its Program, middleware, hosted services) over a real PostgreSQL database. Models come
/// from <paramref name="models"/> (a scripted model where a test must control what is said), or, when it is null, from the
/// real OpenAI-compatible provider at <c>services:inference</c> (set it in <paramref name="settings"/>); Retrieval, when given, is
/// the real Retrieval app reached through its in-memory server.
/// </summary>
public sealed class AgentsHost(string connectionString, IChatModelProvider? models, Action<IServiceCollection>? services = null,
    RetrievalHost? retrieval = null, IReadOnlyDictionary<string, string?>? settings = null) : WebApplicationFactory<AgentsOptions>
{
    public const string TenantHeader = "X-AspireAi-Tenant";

    public HttpClient ClientFor(string tenant)
    {
        var client = CreateClient();
        client.DefaultRequestHeaders.Add(TenantHeader, tenant);
        client.Timeout = TimeSpan.FromSeconds(90);
        return client;
    }

    protected override void ConfigureWebHost(IWebHostBuilder builder)
    {
        builder.UseSetting("ConnectionStrings:agentsdb", connectionString);
        builder.UseSetting("services:inference:http:0", "http://127.0.0.1:9");
        builder.UseSetting("services:retrieval:http:0", "http://localhost");
        builder.UseSetting("Agents:WorkspaceRoot", Path.Combine(Path.GetTempPath(), "aspireai-agents-tests"));
        builder.UseSetting("Agents:RunLease", "00:00:30");
        builder.UseSetting("Agents:OrphanScanInterval", "00:00:00.500");
        foreach (var (key, value) in settings ?? new Dictionary<string, string?>())
        {
            builder.UseSetting(key, value);
        }

        builder.ConfigureLogging(logging => logging.SetMinimumLevel(LogLevel.Warning).AddFilter("Polly", LogLevel.None));
        builder.ConfigureServices(s =>
        {
            if (models is not null)
            {
                s.RemoveAll<IChatModelProvider>();
                s.AddSingleton(models);
            }

            if (retrieval is not null)
            {
                s.AddHttpClient(Tools.Retrieval.RetrievalClient.HttpClientName).ConfigurePrimaryHttpMessageHandler(() => retrieval.Server.CreateHandler());
            }

            s.Configure<HttpStandardResilienceOptions>("-standard", options =>
            {
                options.Retry.Delay = TimeSpan.FromMilliseconds(10);
                options.Retry.MaxRetryAttempts = 1;
            });
            services?.Invoke(s);
        });
    }
}

/// <summary>A tool that only counts its executions (and can be held), to observe idempotency across restarts.</summary>
public sealed class CountingTool : IToolFactory
{
    public System.Collections.Concurrent.ConcurrentDictionary<string, int> Executions { get; } = new();

    public string Type => ToolTypes.Memory; // stands in for a tool type the definitions accept; the test registers it alone

    public ValueTask<IReadOnlyList<ToolFunction>> CreateAsync(Definitions.ToolSpec spec, ToolContext context, CancellationToken ct)
    {
        var function = Microsoft.Extensions.AI.AIFunctionFactory.Create((string item) =>
        {
            Executions.AddOrUpdate(item, 1, (_, n) => n + 1);
            return $"counted {item}";
        }, "count", "Counts an item.");
        return ValueTask.FromResult<IReadOnlyList<ToolFunction>>([new ToolFunction(function, IsReadOnly: false, RequiresApproval: false)]);
    }
}
