using AspireAi.TestSupport;

[assembly: AssemblyFixture(typeof(AspireAi.Gateway.Tests.Support.TestStack))]

namespace AspireAi.Gateway.Tests.Support;

/// <summary>
/// Everything the gateway fronts, started once per test run: two replicas of the real Inference app (embeddings), the real
/// Retrieval and Agents apps over their own databases, and two scripted chat replicas (see <see cref="ScriptedUpstream"/>).
/// Gateways themselves are started per test class with the configuration the class needs, all on one <c>gatewaydb</c>
/// (each test uses its own keys and tenants).
/// </summary>
public sealed class TestStack : IAsyncLifetime
{
    private readonly PostgresServer postgres = new();
    private readonly RedisServer redis = new();

    public const string EmbeddingModel = "all-MiniLM-L6-v2";

    public InferenceApp[] Inference { get; private set; } = [];
    public ScriptedUpstream[] Scripted { get; private set; } = [];
    public RetrievalApp Retrieval { get; private set; } = null!;
    public AgentsApp Agents { get; private set; } = null!;
    public string GatewayDb { get; private set; } = null!;

    /// <summary>A gateway with the default configuration, shared by the tests that need nothing special.</summary>
    public GatewayApp Gateway { get; private set; } = null!;
    public string AgentsDb { get; private set; } = null!;
    public PostgresServer Postgres => postgres;
    public RedisServer Redis => redis;

    public IReadOnlyDictionary<string, string?> GatewaySettings => new Dictionary<string, string?>
    {
        ["ConnectionStrings:gatewaydb"] = GatewayDb,
        ["ConnectionStrings:redis"] = redis.ConnectionString,
        ["Gateway:MasterKey"] = GatewayApp.MasterKey,
        ["Gateway:Deployments:inference"] = "http://inference",
        ["Gateway:Deployments:scripted"] = "http://scripted",
        ["services:inference:http:0"] = Inference[0].Address,
        ["services:inference:http:1"] = Inference[1].Address,
        ["services:scripted:http:0"] = Scripted[0].Address,
        ["services:scripted:http:1"] = Scripted[1].Address,
        ["services:retrieval:http:0"] = Retrieval.Address,
        ["services:agents:http:0"] = Agents.Address,
        ["Gateway:Usage:FlushSeconds"] = "0.2",
    };

    public async ValueTask InitializeAsync()
    {
        await Task.WhenAll(postgres.InitializeAsync().AsTask(), redis.InitializeAsync().AsTask());
        GatewayDb = await postgres.CreateDatabaseAsync("gateway");
        AgentsDb = await postgres.CreateDatabaseAsync("agents");
        Inference = [InferenceApp.Started(new InferenceApp()), InferenceApp.Started(new InferenceApp())];
        Scripted = [await new ScriptedUpstream("replica-a").StartAsync(), await new ScriptedUpstream("replica-b").StartAsync()];
        Retrieval = RetrievalApp.Started(new RetrievalApp(await postgres.CreateDatabaseAsync("retrieval"), Inference[0].Address));
        Agents = AgentsApp.Started(new AgentsApp(AgentsDb));
        Gateway = GatewayApp.Start(this);
    }

    public async ValueTask DisposeAsync()
    {
        await Gateway.DisposeAsync();
        foreach (var app in Inference)
        {
            await app.DisposeAsync();
        }

        foreach (var upstream in Scripted)
        {
            await upstream.DisposeAsync();
        }

        await Retrieval.DisposeAsync();
        await Agents.DisposeAsync();
        await redis.DisposeAsync();
        await postgres.DisposeAsync();
    }
}
