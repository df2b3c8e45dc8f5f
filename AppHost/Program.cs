using AspireAi.AppHost;
using AspireAi.AppHost.Inference;
using AspireAi.AppHost.Infrastructure;
using AspireAi.AppHost.Observability;
using AspireAi.AppHost.Publishing;

// The deployment diagram of AspireAi: infrastructure first, then inference → retrieval → agents → gateway.
// Options: --infra containers|local|auto, --gateway-port N (default 8080), --state-dir DIR (local data), --model PATH,
// --inference-replicas N (local runs: N inference processes, balanced by the gateway).
// Publishing (`-- --publisher manifest --output-path DIR`, for azd and the Helm chart) always describes containers.
if (CommandLineOptions.AsksForHelp(args))
{
    Console.WriteLine(CommandLineOptions.Usage);
    return 0;
}

var builder = DistributedApplication.CreateBuilder(args);
try
{
    var (infra, why) = InfraModeSelector.Select(builder.Configuration["infra"], builder.ExecutionContext.IsPublishMode);
    var stateDirectory = StateDirectory.Resolve(builder.Configuration.GetPathOption("state-dir"));
    var gatewayPort = builder.Configuration.GetIntegerOption("gateway-port", 8080);
    var inferenceReplicas = builder.Configuration.GetIntegerOption("inference-replicas", 1);
    builder.CheckContainerRuntimeAtStart(infra);
    Console.WriteLine(infra == InfraMode.Local
        ? $"Infrastructure: local ({why}): Redis and PostgreSQL from this machine's binaries, data in {stateDirectory}; " +
          "no Qdrant: Retrieval uses its embedded vector store."
        : $"Infrastructure: containers ({why}): Redis, PostgreSQL and Qdrant as containers.");

    // ── Infrastructure ───────────────────────────────────────────────────────────────────────────────
    IResourceBuilder<IResourceWithConnectionString> redis, postgres, gatewayDb, agentsDb, retrievalDb;
    IResourceBuilder<QdrantResource>? qdrant = null;
    if (infra == InfraMode.Containers)
    {
        redis = builder.AddRedis("redis").WithDataVolume(builder.VolumeName("redis"));
        var server = builder.AddPostgres("postgres").WithDataVolume(builder.VolumeName("postgres"));
        (postgres, gatewayDb, agentsDb, retrievalDb) =
            (server, server.AddDatabase("gatewaydb"), server.AddDatabase("agentsdb"), server.AddDatabase("retrievaldb"));
        qdrant = builder.AddQdrant("qdrant");
    }
    else
    {
        redis = builder.AddLocalRedis("redis", stateDirectory);
        var server = builder.AddLocalPostgres("postgres", stateDirectory);
        (postgres, gatewayDb, agentsDb, retrievalDb) =
            (server, server.AddDatabase("gatewaydb"), server.AddDatabase("agentsdb"), server.AddDatabase("retrievaldb"));
    }

    // ── Services ─────────────────────────────────────────────────────────────────────────────────────
    var inference = InferenceReplicas.Add(builder, "inference", inferenceReplicas, replica => replica
        .WithModel(builder.Configuration.GetPathOption("model"))
        .WithHealthProbes()
        .PublishAsImage("aspireai/inference").PublishWithGpus(1).PublishWithStartupTime(TimeSpan.FromMinutes(10))
        .AutoscaleOn(Autoscaling.QueueDepth("inference"))
        .WithBatchState(stateDirectory));

    var retrieval = builder.AddProject<Projects.Retrieval>("retrieval", launchProfileName: null).WithHttpEndpoint()
        .WithReference(retrievalDb).WaitFor(postgres)
        .WithReference(inference)
        .WithHealthProbes()
        .PublishAsImage("aspireai/retrieval");
    if (qdrant is not null)
    {
        retrieval.WithReference(qdrant).WaitFor(qdrant);
    }

    var agents = builder.AddProject<Projects.Agents>("agents", launchProfileName: null).WithHttpEndpoint()
        .WithReference(agentsDb).WaitFor(postgres)
        .WithReference(inference)
        .WithReference(retrieval).WaitFor(retrieval)
        .WithHealthProbes()
        .PublishAsImage("aspireai/agents");

    var masterKey = builder.AddGatewayMasterKey();
    var gateway = builder.AddProject<Projects.Gateway>("gateway", launchProfileName: null)
        .WithHttpEndpoint(port: gatewayPort, name: "http")
        .WithExternalHttpEndpoints()
        .WithEnvironment("Gateway__MasterKey", masterKey)
        .WithReference(redis).WaitFor(redis)
        .WithReference(gatewayDb).WaitFor(postgres)
        .WithReference(inference)
        .WithReference(retrieval).WaitFor(retrieval)
        .WithReference(agents).WaitFor(agents)
        .WithHealthProbes()
        .PublishAsImage("aspireai/gateway").AutoscaleOn(Autoscaling.RequestRate("gateway"))
        .OnResourceReady((_, _, _) =>
        {
            Console.WriteLine($"Gateway ready: http://localhost:{gatewayPort}  (OpenAI-compatible API under /v1)");
            return Task.CompletedTask;
        });
    Console.WriteLine($"Gateway: http://localhost:{gatewayPort}");

    // ── Observability (local containers run; a deployment scrapes with its own Prometheus: deploy/) ────
    if (infra == InfraMode.Containers && builder.ExecutionContext.IsRunMode)
    {
        builder.AddMonitoring([.. inference.Replicas, retrieval, agents, gateway]);
    }
}
catch (AppHostConfigurationException ex)
{
    Console.Error.WriteLine($"error: {ex.Message}");
    return 1;
}

try
{
    await builder.Build().RunAsync();
}
catch (AppHostConfigurationException ex)  // found at start (CheckContainerRuntimeAtStart)
{
    Console.Error.WriteLine($"error: {ex.Message}");
    return 1;
}

return 0;
