// Probes are read back from the app model's probe annotations (ASPIREPROBES001: marked for evaluation).
#pragma warning disable ASPIREPROBES001

using Aspire.Hosting.Publishing;

namespace AspireAi.AppHost.Publishing;

/// <summary>
/// What an orchestrator needs to run a service that Aspire 13.6's manifest does not say for a project: the container
/// image its csproj publishes, its probes and Prometheus endpoint, its GPUs and its scaling rule. (The app model's probes
/// reach only the Azure and Kubernetes publishers, which this registry does not serve.) Each service's manifest entry
/// keeps Aspire's own fields and gains an <c>x-aspireai</c> object, a key that azd's manifest reader ignores, against
/// which the Helm chart and the azd templates are checked.
/// </summary>
internal sealed class ServiceDeploymentAnnotation(string image) : IResourceAnnotation
{
    public const string ManifestKey = "x-aspireai";

    public string Image { get; } = image;

    public int Gpus { get; set; }

    /// <summary>The Container Apps workload profile the service runs on (a parameter: GPU or not is chosen at deploy time).</summary>
    public ParameterResource? WorkloadProfile { get; set; }

    public Autoscaling? Autoscaling { get; set; }

    /// <summary>How long the service may take to start answering <c>/alive</c> (a startup probe), when longer than usual.</summary>
    public TimeSpan? StartupTime { get; set; }
}

internal static class ServiceDeploymentExtensions
{
    /// <summary>The service ships as <paramref name="image"/> (its csproj's <c>ContainerRepository</c>).</summary>
    public static IResourceBuilder<ProjectResource> PublishAsImage(this IResourceBuilder<ProjectResource> builder, string image) =>
        builder.WithAnnotation(new ServiceDeploymentAnnotation(image))
            .WithManifestPublishingCallback(context => WriteAsync(context, builder.Resource));

    /// <summary>
    /// Deployed with <paramref name="count"/> GPUs (Kubernetes <c>nvidia.com/gpu</c>), on the Container Apps workload profile
    /// named by the parameter <c>NAME-gpu-profile</c> (default <c>gpu</c>: serverless GPU; <c>consumption</c> runs on CPU).
    /// </summary>
    public static IResourceBuilder<ProjectResource> PublishWithGpus(this IResourceBuilder<ProjectResource> builder, int count)
    {
        var deployment = Deployment(builder);
        deployment.Gpus = count;
        if (builder.ApplicationBuilder.ExecutionContext.IsPublishMode)
        {
            deployment.WorkloadProfile = builder.ApplicationBuilder
                .AddParameter($"{builder.Resource.Name}-gpu-profile", "gpu", publishValueAsDefault: true).Resource;
        }

        return builder;
    }

    /// <summary>
    /// The service may take up to <paramref name="time"/> before <c>/alive</c> answers (loading a model): a startup probe,
    /// so that the liveness probe does not restart it mid-load. (Not an app-model probe: in a local run every HTTP probe
    /// but liveness becomes a health check, and one on <c>/alive</c> would clash with nothing useful to add.)
    /// </summary>
    public static IResourceBuilder<ProjectResource> PublishWithStartupTime(this IResourceBuilder<ProjectResource> builder, TimeSpan time)
    {
        Deployment(builder).StartupTime = time;
        return builder;
    }

    public static IResourceBuilder<ProjectResource> AutoscaleOn(this IResourceBuilder<ProjectResource> builder, Autoscaling rule)
    {
        Deployment(builder).Autoscaling = rule;
        return builder;
    }

    private static ServiceDeploymentAnnotation Deployment(IResourceBuilder<ProjectResource> builder) =>
        builder.Resource.Annotations.OfType<ServiceDeploymentAnnotation>().SingleOrDefault()
        ?? throw new InvalidOperationException($"'{builder.Resource.Name}': call PublishAsImage before the other deployment settings.");

    /// <summary>Aspire's own <c>project.v0</c> entry (type, path, args, env, bindings), then ours.</summary>
    private static async Task WriteAsync(ManifestPublishingContext context, ProjectResource project)
    {
        var writer = context.Writer;
        writer.WriteString("type", "project.v0");
        writer.WriteString("path", context.GetManifestRelativePath(project.GetProjectMetadata().ProjectPath));
        await context.WriteCommandLineArgumentsAsync(project);
        await context.WriteEnvironmentVariablesAsync(project);
        context.WriteBindings(project);

        var deployment = project.Annotations.OfType<ServiceDeploymentAnnotation>().Single();
        writer.WriteStartObject(ServiceDeploymentAnnotation.ManifestKey);
        writer.WriteString("image", deployment.Image);

        writer.WriteStartArray("probes");
        foreach (var probe in project.Annotations.OfType<EndpointProbeAnnotation>())
        {
            writer.WriteStartObject();
            writer.WriteString("type", probe.Type.ToString().ToLowerInvariant());
            writer.WriteString("path", probe.Path);
            writer.WriteString("endpoint", probe.EndpointReference.EndpointName);
            writer.WriteNumber("initialDelaySeconds", probe.InitialDelaySeconds);
            writer.WriteNumber("periodSeconds", probe.PeriodSeconds);
            writer.WriteNumber("timeoutSeconds", probe.TimeoutSeconds);
            writer.WriteNumber("failureThreshold", probe.FailureThreshold);
            writer.WriteEndObject();
        }

        if (deployment.StartupTime is { } startup)
        {
            const int period = 10;
            writer.WriteStartObject();
            writer.WriteString("type", "startup");
            writer.WriteString("path", HealthProbes.LivenessPath);
            writer.WriteString("endpoint", "http");
            writer.WriteNumber("initialDelaySeconds", 0);
            writer.WriteNumber("periodSeconds", period);
            writer.WriteNumber("timeoutSeconds", 1);
            writer.WriteNumber("failureThreshold", (int)Math.Ceiling(startup.TotalSeconds / period));
            writer.WriteEndObject();
        }

        writer.WriteEndArray();

        writer.WriteStartObject("metrics");
        writer.WriteString("path", HealthProbes.MetricsPath);
        writer.WriteString("endpoint", "http");
        writer.WriteEndObject();

        if (deployment.Gpus > 0 || deployment.WorkloadProfile is not null)
        {
            writer.WriteStartObject("gpu");
            writer.WriteNumber("count", deployment.Gpus);
            if (deployment.WorkloadProfile is { } profile)
            {
                writer.WriteString("workloadProfile", profile.ValueExpression);
            }

            writer.WriteEndObject();
        }

        if (deployment.Autoscaling is { } scale)
        {
            writer.WriteStartObject("autoscale");
            writer.WriteString("metric", scale.Metric);
            writer.WriteString("query", scale.Query);
            writer.WriteNumber("threshold", scale.Threshold);
            writer.WriteNumber("minReplicas", scale.MinReplicas);
            writer.WriteNumber("maxReplicas", scale.MaxReplicas);
            writer.WriteEndObject();
        }

        writer.WriteEndObject();
    }
}
