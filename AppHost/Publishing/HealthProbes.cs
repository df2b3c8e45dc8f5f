// WithHttpProbe is marked for evaluation (ASPIREPROBES001); it is the app model's own way to state probes, which the
// manifest extension (ServiceDeployment) writes out for Kubernetes and Container Apps.
#pragma warning disable ASPIREPROBES001

namespace AspireAi.AppHost.Publishing;

internal static class HealthProbes
{
    /// <summary>ServiceDefaults' endpoints: <c>/health</c> runs every check (ready to serve), <c>/alive</c> only the liveness one.</summary>
    public const string ReadinessPath = "/health";
    public const string LivenessPath = "/alive";

    /// <summary>Where ServiceDefaults serves the Prometheus scrape.</summary>
    public const string MetricsPath = "/metrics";

    /// <summary>
    /// Readiness on <c>/health</c> and liveness on <c>/alive</c>. In a local run each probe is also a health check that
    /// <c>WaitFor</c> waits on; <c>/alive</c> runs a subset of <c>/health</c>'s checks, so a service is healthy exactly when
    /// <c>/health</c> answers, as with <c>WithHttpHealthCheck("/health")</c>, which this replaces (both would clash).
    /// </summary>
    public static IResourceBuilder<ProjectResource> WithHealthProbes(this IResourceBuilder<ProjectResource> builder) =>
        builder.WithHttpProbe(ProbeType.Readiness, ReadinessPath).WithHttpProbe(ProbeType.Liveness, LivenessPath);
}
