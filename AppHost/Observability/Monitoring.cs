namespace AspireAi.AppHost.Observability;

/// <summary>
/// Prometheus and Grafana beside a local containers run, provisioned from <c>deploy/</c>: the scrape configuration
/// (<c>deploy/prometheus/prometheus.yml</c>) and the dashboard (<c>deploy/grafana/</c>) that deployments use too.
/// </summary>
internal static class Monitoring
{
    private const string PrometheusImage = "docker.io/prom/prometheus";
    private const string PrometheusTag = "v3.5.0";
    private const string GrafanaImage = "docker.io/grafana/grafana";
    private const string GrafanaTag = "12.1.1";

    /// <summary>Where the entry script writes one file_sd target file per service; prometheus.yml reads them.</summary>
    private const string TargetsFolder = "/prometheus/targets";

    public static void AddMonitoring(this IDistributedApplicationBuilder builder, IReadOnlyList<IResourceBuilder<ProjectResource>> services)
    {
        var deploy = Path.GetFullPath(Path.Combine(builder.AppHostDirectory, "..", "deploy"));

        // The services' ports are chosen when the run starts, so the static scrape configuration cannot name them: the
        // container's entry script turns SCRAPE_TARGETS ("job=host:port …", resolved by Aspire as seen from a container)
        // into file_sd target files, then starts Prometheus as the image would.
        var prometheus = builder.AddContainer("prometheus", PrometheusImage, PrometheusTag)
            .WithBindMount(Path.Combine(deploy, "prometheus", "prometheus.yml"), "/etc/prometheus/prometheus.yml", isReadOnly: true)
            .WithHttpEndpoint(targetPort: 9090, name: "http")
            .WithEnvironment(context =>
            {
                var targets = new ReferenceExpressionBuilder();
                foreach (var service in services)
                {
                    targets.Append($"{service.Resource.Name}={service.GetEndpoint("http").Property(EndpointProperty.HostAndPort)} ");
                }

                context.EnvironmentVariables["SCRAPE_TARGETS"] = targets.Build();
            })
            .WithEntrypoint("/bin/sh")
            .WithArgs("-c",
                $"mkdir -p {TargetsFolder} && for pair in $SCRAPE_TARGETS; do " +
                $"printf '[{{\"targets\":[\"%s\"],\"labels\":{{\"service\":\"%s\"}}}}]' \"${{pair#*=}}\" \"${{pair%%=*}}\" > {TargetsFolder}/${{pair%%=*}}.json; done; " +
                "exec /bin/prometheus --config.file=/etc/prometheus/prometheus.yml --storage.tsdb.path=/prometheus")
            .WithHttpHealthCheck("/-/ready");
        foreach (var service in services)
        {
            prometheus.WaitFor(service);
        }

        // A local, loopback-only Grafana: anonymous visitors may edit, so there is no password to hand out.
        builder.AddContainer("grafana", GrafanaImage, GrafanaTag)
            .WithBindMount(Path.Combine(deploy, "grafana", "provisioning"), "/etc/grafana/provisioning", isReadOnly: true)
            .WithBindMount(Path.Combine(deploy, "grafana", "dashboards"), "/var/lib/grafana/dashboards", isReadOnly: true)
            .WithEnvironment("PROMETHEUS_URL", prometheus.GetEndpoint("http"))
            .WithEnvironment("GF_AUTH_ANONYMOUS_ENABLED", "true")
            .WithEnvironment("GF_AUTH_ANONYMOUS_ORG_ROLE", "Admin")
            .WithEnvironment("GF_AUTH_DISABLE_LOGIN_FORM", "true")
            .WithEnvironment("GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH", "/var/lib/grafana/dashboards/aspireai.json")
            .WithHttpEndpoint(targetPort: 3000, name: "http")
            .WithHttpHealthCheck("/api/health")
            .WaitFor(prometheus);
    }
}
