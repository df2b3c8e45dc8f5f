using System.Text.Json.Nodes;
using Aspire.Hosting;
using Aspire.Hosting.ApplicationModel;
using Aspire.Hosting.Testing;
using AspireAi.Deploy.Tests.Support;

namespace AspireAi.Deploy.Tests;

/// <summary>The Grafana dashboard and Prometheus configuration in deploy/, and the local containers run that provisions them.</summary>
public sealed class ObservabilityTests(PublishedManifest manifest)
{
    private static readonly JsonNode Dashboard = JsonNode.Parse(File.ReadAllText(Repository.PathOf("deploy", "grafana", "dashboards", "aspireai.json")))!;

    private static IEnumerable<string> Expressions(JsonNode dashboard) => dashboard["panels"]!.AsArray()
        .SelectMany(p => p!["targets"]?.AsArray() ?? []).Select(t => t!["expr"]!.GetValue<string>());

    [Theory]
    // vLLM's names, as Inference's /metrics serves them (counters with _total, histograms with _bucket).
    [InlineData("rate(vllm:generation_tokens_total{job=\"inference\"}")]
    [InlineData("rate(vllm:prompt_tokens_total{job=\"inference\"}")]
    [InlineData("histogram_quantile(0.99, sum by (le) (rate(vllm:time_to_first_token_seconds_bucket{job=\"inference\"}")]
    [InlineData("histogram_quantile(0.5, sum by (le) (rate(vllm:inter_token_latency_seconds_bucket{job=\"inference\"}")]
    [InlineData("sum(vllm:num_requests_waiting{job=\"inference\"})")]
    [InlineData("vllm:kv_cache_usage_perc{job=\"inference\"}")]
    [InlineData("sum(rate(vllm:prefix_cache_hits_total{job=\"inference\"}[$__rate_interval])) / sum(rate(vllm:prefix_cache_queries_total{job=\"inference\"}")]
    [InlineData("rate(vllm:num_preemptions_total{job=\"inference\"}")]
    // The gateway's: ASP.NET Core's request count, and the AspireAi.Gateway meter.
    [InlineData("http_server_request_duration_seconds_count{job=\"gateway\", http_response_status_code=\"429\"}")]
    [InlineData("rate(aspireai_gateway_rate_limited_total{job=\"gateway\"}")]
    [InlineData("rate(aspireai_gateway_cache_lookups_total{job=\"gateway\", result=\"hit\"}")]
    [InlineData("sum by (tenant, kind) (rate(aspireai_gateway_tokens_total{job=\"gateway\"}")]
    public void DashboardChartsTheMetric(string expression) =>
        Assert.Contains(Expressions(Dashboard), e => e.Contains(expression, StringComparison.Ordinal));

    [Fact]
    public void DashboardShowsWhatEachTierScalesOn()
    {
        foreach (var service in new[] { "inference", "gateway" })
        {
            var query = manifest.Deployment(service)["autoscale"]!["metric"]!.GetValue<string>();
            Assert.Contains(Expressions(Dashboard), e => e.Contains(query, StringComparison.Ordinal) && e.Contains($"job=\"{service}\"", StringComparison.Ordinal));
        }
    }

    [Fact]
    public void DashboardIsPortableAndItsPanelsDoNotOverlap()
    {
        Assert.Equal("aspireai", Dashboard["uid"]!.GetValue<string>());
        var datasource = Dashboard["templating"]!["list"]!.AsArray().Single(v => v!["name"]!.GetValue<string>() == "datasource")!;
        Assert.Equal(("datasource", "prometheus"), (datasource["type"]!.GetValue<string>(), datasource["query"]!.GetValue<string>()));
        var panels = Dashboard["panels"]!.AsArray().Select(p => p!).ToList();
        Assert.Equal(panels.Count, panels.Select(p => p["id"]!.GetValue<int>()).Distinct().Count());
        foreach (var target in panels.SelectMany(p => p["targets"]?.AsArray() ?? []))
        {
            Assert.Equal("${datasource}", target!["datasource"]!["uid"]!.GetValue<string>());
        }

        var cells = new HashSet<(int, int)>();
        foreach (var panel in panels)
        {
            var grid = panel["gridPos"]!;
            var (x, y, w, h) = (grid["x"]!.GetValue<int>(), grid["y"]!.GetValue<int>(), grid["w"]!.GetValue<int>(), grid["h"]!.GetValue<int>());
            Assert.InRange(x + w, 1, 24);
            for (var i = x; i < x + w; i++)
            {
                for (var j = y; j < y + h; j++)
                {
                    Assert.True(cells.Add((i, j)), $"panel '{panel["title"]}' overlaps another at ({i}, {j})");
                }
            }
        }
    }

    [Fact]
    public void KubernetesPodScrapingNamesJobsAfterTheChartsAppLabel()
    {
        var job = Yaml.Parse(File.ReadAllText(Repository.PathOf("deploy", "prometheus", "kubernetes-pods.yml")))!["scrape_configs"]![0]!;
        var rules = job["relabel_configs"]!.AsArray().Select(r => r!).ToList();
        Assert.Contains(rules, r => r["target_label"]?.GetValue<string>() == "job"
            && r["source_labels"]![0]!.GetValue<string>() == "__meta_kubernetes_pod_label_app_kubernetes_io_name");
        Assert.Contains(rules, r => r["action"]?.GetValue<string>() == "keep"
            && r["source_labels"]![0]!.GetValue<string>() == "__meta_kubernetes_pod_label_app_kubernetes_io_part_of"
            && r["regex"]!.GetValue<string>() == "aspireai");
        Assert.Contains(rules, r => r["target_label"]?.GetValue<string>() == "__metrics_path__"
            && r["source_labels"]![0]!.GetValue<string>() == "__meta_kubernetes_pod_annotation_prometheus_io_path");
    }

    [Fact]
    public async Task ContainersRunProvisionsPrometheusAndGrafanaFromDeploy()
    {
        // The run-mode model only: the AppHost is never started here.
        await using var builder = await DistributedApplicationTestingBuilder.CreateAsync<Projects.AppHost>(
            ["--infra", "containers", "--Parameters:gateway-master-key=sk-test", "--Parameters:inference-model=unused"],
            (options, _) => options.DisableDashboard = true, TestContext.Current.CancellationToken);
        var prometheus = builder.Resources.OfType<ContainerResource>().Single(r => r.Name == "prometheus");
        var grafana = builder.Resources.OfType<ContainerResource>().Single(r => r.Name == "grafana");

        var mounts = prometheus.Annotations.OfType<ContainerMountAnnotation>()
            .Concat(grafana.Annotations.OfType<ContainerMountAnnotation>()).ToDictionary(m => m.Target, m => m.Source!);
        Assert.Equal(Repository.PathOf("deploy", "prometheus", "prometheus.yml"), mounts["/etc/prometheus/prometheus.yml"]);
        Assert.Equal(Repository.PathOf("deploy", "grafana", "provisioning"), mounts["/etc/grafana/provisioning"]);
        Assert.Equal(Repository.PathOf("deploy", "grafana", "dashboards"), mounts["/var/lib/grafana/dashboards"]);

        // Prometheus reads the target files the container's entry script writes, and turns their service label into job.
        var config = Yaml.Parse(File.ReadAllText(mounts["/etc/prometheus/prometheus.yml"]))!;
        var job = config["scrape_configs"]!.AsArray().Single()!;
        Assert.Equal(manifest.Deployment("inference")["metrics"]!["path"]!.GetValue<string>(), job["metrics_path"]!.GetValue<string>());
        var pattern = job["file_sd_configs"]![0]!["files"]![0]!.GetValue<string>();
        var script = string.Join(' ', await ArgumentsAsync(prometheus));
        Assert.Contains($"> {Path.GetDirectoryName(pattern)}/${{pair%%=*}}.json", script);
        Assert.Contains("\\\"labels\\\":{\\\"service\\\":", script.Replace("\"", "\\\"", StringComparison.Ordinal));
        var relabel = job["relabel_configs"]!.AsArray().Single()!;
        Assert.Equal(("service", "job"), (relabel["source_labels"]![0]!.GetValue<string>(), relabel["target_label"]!.GetValue<string>()));

        // Grafana's datasource points at the Prometheus container; its dashboard provider reads the mounted folder.
        var datasource = Yaml.Parse(File.ReadAllText(Path.Combine(mounts["/etc/grafana/provisioning"], "datasources", "prometheus.yml")))!;
        Assert.Equal("${PROMETHEUS_URL}", datasource["datasources"]![0]!["url"]!.GetValue<string>());
        var environment = new EnvironmentCallbackContext(builder.ExecutionContext);
        foreach (var callback in grafana.Annotations.OfType<EnvironmentCallbackAnnotation>())
        {
            await callback.Callback(environment);
        }

        var prometheusUrl = Assert.IsType<EndpointReference>(environment.EnvironmentVariables["PROMETHEUS_URL"]);
        Assert.Same(prometheus, prometheusUrl.Resource);
        var provider = Yaml.Parse(File.ReadAllText(Path.Combine(mounts["/etc/grafana/provisioning"], "dashboards", "aspireai.yml")))!;
        Assert.Equal("/var/lib/grafana/dashboards", provider["providers"]![0]!["options"]!["path"]!.GetValue<string>());

        // The services it scrapes are every project of the diagram.
        Assert.Equal(PublishedManifest.Services.Order(), builder.Resources.OfType<ProjectResource>().Select(p => p.Name).Order());
    }

    [Fact]
    public async Task MonitoringContainersRunLocallyAndAreNeverPublished()
    {
        await using var builder = await DistributedApplicationTestingBuilder.CreateAsync<Projects.AppHost>(
            ["--infra", "containers", "--Parameters:gateway-master-key=sk-test"], (options, _) => options.DisableDashboard = true, TestContext.Current.CancellationToken);
        Assert.Contains(builder.Resources, r => r.Name == "prometheus");
        var published = manifest.Resources.Select(r => r.Key).ToList();
        Assert.DoesNotContain("prometheus", published);
        Assert.DoesNotContain("grafana", published);
    }

    private static async Task<IReadOnlyList<string>> ArgumentsAsync(ContainerResource resource)
    {
        var args = new List<object>();
        foreach (var callback in resource.Annotations.OfType<CommandLineArgsCallbackAnnotation>())
        {
            await callback.Callback(new CommandLineArgsCallbackContext(args));
        }

        return args.Select(a => a.ToString()!).ToList();
    }
}
