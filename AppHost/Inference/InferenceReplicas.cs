using AspireAi.AppHost.Infrastructure;

namespace AspireAi.AppHost.Inference;

/// <summary>
/// The inference deployment's replicas in a local run, each its own process with its own KV cache, and the service name
/// (<c>inference</c>) under which consumers find all of them.
/// </summary>
/// <remarks>
/// Aspire's <c>WithReplicas(n)</c> puts one round-robin proxy in front of the replicas, which hides them from the gateway:
/// it needs each replica's address to balance by requests in flight and to send requests sharing a prompt prefix to the
/// same replica's prefix cache. So each replica is a resource of its own (<c>inference-0</c> … <c>inference-{n-1}</c>),
/// and a consumer gets every address under the one service name, as service discovery reads a multi-endpoint service:
/// <c>services__inference__http__0</c>, <c>__1</c>, …. With one replica the resource is plain <c>inference</c>.
/// Published deployments always have one resource; their orchestrator scales it (KEDA / Container Apps rules).
/// </remarks>
internal sealed class InferenceReplicas(string serviceName, IReadOnlyList<IResourceBuilder<ProjectResource>> replicas)
{
    public string ServiceName { get; } = serviceName;

    public IReadOnlyList<IResourceBuilder<ProjectResource>> Replicas { get; } = replicas;

    /// <summary>
    /// Adds <paramref name="count"/> replicas of the Inference project, each configured by <paramref name="configure"/>.
    /// </summary>
    public static InferenceReplicas Add(IDistributedApplicationBuilder builder, string serviceName, int count,
        Func<IResourceBuilder<ProjectResource>, IResourceBuilder<ProjectResource>> configure)
    {
        if (count < 1 || (count > 1 && builder.ExecutionContext.IsPublishMode))
        {
            throw new AppHostConfigurationException(count < 1
                ? $"--inference-replicas must be at least 1 (got {count})."
                : "--inference-replicas applies to local runs; a published deployment scales inference with its orchestrator's rules.");
        }

        var replicas = Enumerable.Range(0, count)
            .Select(i => configure(count == 1
                ? builder.AddProject<Projects.Inference>(serviceName, launchProfileName: null).WithHttpEndpoint()
                : builder.AddProject<Projects.Inference>($"{serviceName}-{i}", launchProfileName: null).WithDirectHttpEndpoint()))
            .ToList();
        return new InferenceReplicas(serviceName, replicas);
    }
}

internal static class InferenceReplicasExtensions
{
    /// <summary>
    /// In a local run, the Batch API's files and batches outlive restarts in the AppHost's state folder, beside the local
    /// Redis/PostgreSQL data: one folder per replica (<c>inference</c>, <c>inference-0</c> …), since each replica resumes
    /// the unfinished batches it finds there.
    /// </summary>
    public static IResourceBuilder<ProjectResource> WithBatchState(this IResourceBuilder<ProjectResource> replica, string stateDirectory) =>
        replica.ApplicationBuilder.ExecutionContext.IsRunMode
            ? replica.WithEnvironment("Inference__StateDir", Path.Combine(stateDirectory, replica.Resource.Name))
            : replica;

    /// <summary>
    /// The replica's own port, without Aspire's proxy in front. A proxy whose process has died still accepts connections
    /// and holds them unanswered, so the gateway could not tell a dead replica from a slow one (its requests waited for
    /// the activity timeout, seen in the replica-kill test); the process's own port refuses at once, and the gateway
    /// retries on another replica.
    /// </summary>
    public static IResourceBuilder<ProjectResource> WithDirectHttpEndpoint(this IResourceBuilder<ProjectResource> replica)
    {
        var port = FreePort.Next();
        return replica.WithHttpEndpoint(port: port, targetPort: port, isProxied: false);
    }

    /// <summary>
    /// Lets <paramref name="consumer"/> reach every replica as <c>http://inference</c> (service discovery picks among them;
    /// the gateway balances them itself) and start only once all of them are ready.
    /// </summary>
    public static IResourceBuilder<ProjectResource> WithReference(this IResourceBuilder<ProjectResource> consumer, InferenceReplicas inference)
    {
        if (inference.Replicas is [var single])
        {
            return consumer.WithReference(single).WaitFor(single);
        }

        for (var i = 0; i < inference.Replicas.Count; i++)
        {
            var replica = inference.Replicas[i];
            consumer.WithEnvironment($"services__{inference.ServiceName}__http__{i}", replica.GetEndpoint("http"))
                .WithRelationship(replica.Resource, "Reference")
                .WaitFor(replica);
        }

        return consumer;
    }
}
