using AspireAi.TestSupport;

namespace AspireAi.Agents.Tests;

/// <summary>
/// The real Retrieval, Agents and gateway apps on loopback ports, wired as the AppHost wires them: the gateway reaches
/// Agents and Retrieval by service discovery, Agents reaches Retrieval, everyone embeds through the embedding server.
/// Each app has its own database (<c>{prefix}_retrieval</c>, <c>_agents</c>, <c>_gateway</c>); the model is
/// <paramref name="models"/>.
/// </summary>
internal sealed class AgentsBehindGateway(RetrievalHost retrieval, AgentsHost agents, GatewayHost gateway) : IAsyncDisposable
{
    public RetrievalHost Retrieval { get; } = retrieval;

    public AgentsHost Agents { get; } = agents;

    public GatewayHost Gateway { get; } = gateway;

    public static async Task<AgentsBehindGateway> StartAsync(string prefix, ScriptedModels models,
        PostgresServer postgres, EmbeddingServer embeddings, RedisServer redis)
    {
        var retrieval = new RetrievalHost(await postgres.CreateDatabaseAsync($"{prefix}_retrieval"), embeddings.BaseAddress);
        var retrievalAddress = retrieval.StartOnAnyPort();

        var agents = new AgentsHost(await postgres.CreateDatabaseAsync($"{prefix}_agents"), models,
            settings: new Dictionary<string, string?> { ["services:retrieval:http:0"] = retrievalAddress });
        var agentsAddress = agents.StartOnAnyPort();

        var gateway = new GatewayHost(new Dictionary<string, string?>
        {
            ["ConnectionStrings:gatewaydb"] = await postgres.CreateDatabaseAsync($"{prefix}_gateway"),
            ["ConnectionStrings:redis"] = redis.ConnectionString,
            ["services:inference:http:0"] = embeddings.BaseAddress,
            ["services:retrieval:http:0"] = retrievalAddress,
            ["services:agents:http:0"] = agentsAddress,
        }).Start();
        return new AgentsBehindGateway(retrieval, agents, gateway);
    }

    public async ValueTask DisposeAsync()
    {
        await Gateway.DisposeAsync();
        await Agents.DisposeAsync();
        await Retrieval.DisposeAsync();
    }
}
