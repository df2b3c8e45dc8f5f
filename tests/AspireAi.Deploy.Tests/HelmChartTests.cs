using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using System.Xml.Linq;
using AspireAi.Deploy.Tests.Support;

namespace AspireAi.Deploy.Tests;

/// <summary>
/// deploy/helm/aspireai against the published manifest: the chart is written by hand (no Kubernetes publisher or
/// aspirate is served by the registry here), so every fact the manifest states is checked in the rendered objects.
/// </summary>
public sealed class HelmChartTests(PublishedManifest manifest)
{
    private static readonly string Chart = Repository.PathOf("deploy", "helm", "aspireai");
    private const string TestModel = "hf:example/model/model.gguf";

    /// <summary>Environment the chart adds beyond the manifest's: OpenTelemetry naming/export, the model cache folder, and
    /// QDRANT_API_KEY, which carries the Secret into retrieval's Qdrant connection string as $(QDRANT_API_KEY).</summary>
    private static readonly HashSet<string> ChartOnlyEnv = ["OTEL_SERVICE_NAME", "OTEL_EXPORTER_OTLP_ENDPOINT", "ASPIREAI_MODEL_CACHE", "QDRANT_API_KEY"];

    private readonly ManifestExpressions _expressions = new(manifest);

    private static IReadOnlyList<JsonObject> Render(Action<JsonObject>? configure = null)
    {
        var values = HelmSubset.LoadValues(Chart);
        HelmSubset.Set(values, "inference.model", TestModel);
        configure?.Invoke(values);
        return HelmSubset.RenderChart(Chart, values);
    }

    private static JsonObject Find(IEnumerable<JsonObject> objects, string kind, string name) =>
        objects.SingleOrDefault(o => o["kind"]!.GetValue<string>() == kind && o["metadata"]!["name"]!.GetValue<string>() == name)
        ?? throw new KeyNotFoundException($"The chart renders no {kind} '{name}'.");

    private static JsonObject Container(JsonObject workload) =>
        workload["spec"]!["template"]!["spec"]!["containers"]!.AsArray().Single()!.AsObject();

    [Theory]
    [InlineData("inference")]
    [InlineData("retrieval")]
    [InlineData("agents")]
    [InlineData("gateway")]
    public void ServiceRunsTheManifestImageWithItsEnvironment(string service)
    {
        var values = HelmSubset.LoadValues(Chart);
        var container = Container(Find(Render(), "Deployment", service));
        Assert.Equal($"{values["image"]!["registry"]}/{manifest.Deployment(service)["image"]}:{values["image"]!["tag"]}",
            container["image"]!.GetValue<string>());

        var entries = container["env"]!.AsArray().Select(e => e!.AsObject()).ToList();
        var names = entries.Select(e => e["name"]!.GetValue<string>()).ToList();
        Assert.Equal(names.Count, names.Distinct().Count());
        // Variables filled from the Secret, by position: $(NAME) expands only when NAME is defined earlier.
        var secretKeys = new Dictionary<string, (string Key, int Index)>();
        for (var i = 0; i < entries.Count; i++)
        {
            if (entries[i]["valueFrom"]?["secretKeyRef"] is { } secret)
            {
                Assert.Equal(values["secrets"]!["name"]!.GetValue<string>(), secret["name"]!.GetValue<string>());
                secretKeys[names[i]] = (secret["key"]!.GetValue<string>(), i);
            }
        }

        foreach (var (key, expression) in manifest.Env(service))
        {
            var expected = _expressions.Resolve(expression);
            if (expected.Contains("⟨uri:", StringComparison.Ordinal))
            {
                // *_URI carries the password URI-encoded: Kubernetes cannot encode a Secret while expanding it, and no
                // AspireAi service reads these (they read ConnectionStrings__*). Left out of the chart on purpose.
                Assert.DoesNotContain(key, names);
                continue;
            }

            var index = names.IndexOf(key);
            Assert.True(index >= 0, $"{service}: the chart lacks {key} (manifest: {expression})");
            if (Regex.Match(expected, "^⟨secret:(.+)⟩$") is { Success: true } whole)
            {
                Assert.Equal(whole.Groups[1].Value, secretKeys.GetValueOrDefault(key).Key);
                continue;
            }

            var actual = Regex.Replace(entries[index]["value"]!.GetValue<string>(), @"\$\(([A-Za-z0-9_]+)\)", m =>
            {
                Assert.True(secretKeys.TryGetValue(m.Groups[1].Value, out var secret) && secret.Index < index,
                    $"{service}: {key} refers to $({m.Groups[1].Value}), which is not a Secret variable defined before it");
                return ManifestExpressions.Secret(secret.Key);
            });
            Assert.Equal(expected.Replace(ManifestExpressions.Parameter("inference-model"), TestModel, StringComparison.Ordinal), actual);
        }

        Assert.Empty(names.Except(manifest.Env(service).Keys).Except(ChartOnlyEnv));
    }

    [Theory]
    [InlineData("inference")]
    [InlineData("retrieval")]
    [InlineData("agents")]
    [InlineData("gateway")]
    public void ServiceHasTheManifestProbesOnItsHttpPort(string service)
    {
        var objects = Render();
        var container = Container(Find(objects, "Deployment", service));
        var port = Assert.Single(container["ports"]!.AsArray())!;
        Assert.Equal(("http", ManifestExpressions.ProjectPort), (port["name"]!.GetValue<string>(), port["containerPort"]!.GetValue<int>()));
        foreach (var probe in manifest.Deployment(service)["probes"]!.AsArray())
        {
            var type = probe!["type"]!.GetValue<string>();
            var chartProbe = container[$"{type}Probe"] ?? throw new KeyNotFoundException($"{service} has no {type}Probe");
            Assert.Equal(probe["path"]!.GetValue<string>(), chartProbe["httpGet"]!["path"]!.GetValue<string>());
            Assert.Equal(probe["endpoint"]!.GetValue<string>(), chartProbe["httpGet"]!["port"]!.GetValue<string>());
            Assert.Equal(probe["periodSeconds"]!.GetValue<int>(), chartProbe["periodSeconds"]!.GetValue<int>());
            Assert.Equal(probe["failureThreshold"]!.GetValue<int>(), chartProbe["failureThreshold"]!.GetValue<int>());
            Assert.Equal(probe["timeoutSeconds"]!.GetValue<int>(), chartProbe["timeoutSeconds"]!.GetValue<int>());
        }

        Assert.Equal(manifest.Deployment(service)["probes"]!.AsArray().Count,
            new[] { "readinessProbe", "livenessProbe", "startupProbe" }.Count(container.ContainsKey));
        var servicePort = Assert.Single(Find(objects, "Service", service)["spec"]!["ports"]!.AsArray())!;
        Assert.Equal("http", servicePort["targetPort"]!.GetValue<string>());
    }

    [Theory]
    [InlineData("redis")]
    [InlineData("postgres")]
    [InlineData("qdrant")]
    public void StoreRunsTheManifestContainerOnAPersistentVolume(string store)
    {
        var objects = Render();
        var resource = manifest.Resource(store);
        var statefulSet = Find(objects, "StatefulSet", store);
        var container = Container(statefulSet);
        Assert.Equal(resource["image"]!.GetValue<string>(), container["image"]!.GetValue<string>());

        var volume = Assert.Single(resource["volumes"]!.AsArray())!;
        var claim = Assert.Single(statefulSet["spec"]!["volumeClaimTemplates"]!.AsArray())!["metadata"]!["name"]!.GetValue<string>();
        Assert.Contains(container["volumeMounts"]!.AsArray(),
            m => m!["name"]!.GetValue<string>() == claim && m["mountPath"]!.GetValue<string>() == volume["target"]!.GetValue<string>());

        var bindings = resource["bindings"]!.AsObject().Select(b => b.Value!["targetPort"]!.GetValue<int>()).Order();
        Assert.Equal(bindings, container["ports"]!.AsArray().Select(p => p!["containerPort"]!.GetValue<int>()).Order());
        Assert.Equal(bindings, Find(objects, "Service", store)["spec"]!["ports"]!.AsArray().Select(p => p!["port"]!.GetValue<int>()).Order());

        var env = container["env"]!.AsArray().ToDictionary(e => e!["name"]!.GetValue<string>(), e => e!.AsObject());
        foreach (var (key, expression) in manifest.Env(store))
        {
            var expected = _expressions.Resolve(expression);
            if (Regex.Match(expected, "^⟨secret:(.+)⟩$") is { Success: true } secret)
            {
                Assert.Equal(secret.Groups[1].Value, env[key]["valueFrom"]!["secretKeyRef"]!["key"]!.GetValue<string>());
            }
            else
            {
                Assert.Equal(expected, env[key]["value"]!.GetValue<string>());
            }
        }

        if (resource["entrypoint"] is { } entrypoint)
        {
            Assert.Equal([entrypoint.GetValue<string>()], container["command"]!.AsArray().Select(a => a!.GetValue<string>()));
            Assert.Equal(resource["args"]!.AsArray().Select(a => a!.GetValue<string>()), container["args"]!.AsArray().Select(a => a!.GetValue<string>()));
        }
    }

    [Fact]
    public void PostgresCreatesEveryDatabaseOfTheManifest()
    {
        var databases = manifest.Resources.Where(r => r.Value!["type"]!.GetValue<string>() == "value.v0"
                && r.Value["connectionString"]!.GetValue<string>().StartsWith("{postgres.connectionString};Database=", StringComparison.Ordinal))
            .Select(r => r.Value!["connectionString"]!.GetValue<string>().Split("Database=")[1]).Order().ToList();
        Assert.Equal(["agentsdb", "gatewaydb", "retrievaldb"], databases);
        var sql = Find(Render(), "ConfigMap", "postgres-init")["data"]!["databases.sql"]!.GetValue<string>();
        Assert.Equal(databases, Regex.Matches(sql, @"CREATE DATABASE (\w+);").Select(m => m.Groups[1].Value).Order());
    }

    [Fact]
    public void OnlyTheGatewayIsReachableFromOutside()
    {
        var objects = Render(v => HelmSubset.Set(v, "gateway.ingress.enabled", true));
        var services = objects.Where(o => o["kind"]!.GetValue<string>() == "Service").ToList();
        Assert.Equal(7, services.Count);
        var exposed = services.Where(s => s["spec"]!["type"]!.GetValue<string>() != "ClusterIP").Select(s => s["metadata"]!["name"]!.GetValue<string>());
        Assert.Equal(["gateway"], exposed);
        Assert.Equal("LoadBalancer", Find(objects, "Service", "gateway")["spec"]!["type"]!.GetValue<string>());
        var backends = Find(objects, "Ingress", "gateway")["spec"]!["rules"]!.AsArray()
            .SelectMany(r => r!["http"]!["paths"]!.AsArray()).Select(p => p!["backend"]!["service"]!["name"]!.GetValue<string>());
        Assert.Equal(["gateway"], backends.Distinct());
        Assert.DoesNotContain(Render(), o => o["kind"]!.GetValue<string>() == "Ingress");
    }

    [Fact]
    public void InternalServicesAdmitOnlyTheServicesThatReferenceThem()
    {
        var objects = Render();
        foreach (var target in new[] { "inference", "retrieval", "agents", "redis", "postgres", "qdrant" })
        {
            // Callers per the manifest: services whose resolved environment names the target's host.
            var host = new Regex($@"(?<![A-Za-z0-9-]){target}(?=[:;])");
            var callers = PublishedManifest.Services
                .Where(s => manifest.Env(s).Values.Any(v => host.IsMatch(_expressions.Resolve(v).Replace("Host=", "", StringComparison.Ordinal))))
                .Order().ToList();
            Assert.NotEmpty(callers);
            var policy = Find(objects, "NetworkPolicy", $"{target}-callers")["spec"]!;
            Assert.Equal(target, policy["podSelector"]!["matchLabels"]!["app.kubernetes.io/name"]!.GetValue<string>());
            var admitted = policy["ingress"]!.AsArray().SelectMany(rule => rule!["from"]!.AsArray())
                .Select(from => from!["podSelector"]?["matchLabels"]?["app.kubernetes.io/name"]?.GetValue<string>())
                .OfType<string>().Order();
            Assert.Equal(callers, admitted);
        }

        Assert.DoesNotContain(objects, o => o["kind"]!.GetValue<string>() == "NetworkPolicy" && o["metadata"]!["name"]!.GetValue<string>() == "gateway-callers");
    }

    [Fact]
    public void InferenceRequestsTheManifestGpusAndRunsOnCpuWithZero()
    {
        var gpus = manifest.Deployment("inference")["gpu"]!["count"]!.GetValue<int>();
        var deployment = Find(Render(), "Deployment", "inference");
        Assert.Equal(gpus, Container(deployment)["resources"]!["limits"]!["nvidia.com/gpu"]!.GetValue<int>());
        Assert.Contains(deployment["spec"]!["template"]!["spec"]!["tolerations"]!.AsArray(), t => t!["key"]!.GetValue<string>() == "nvidia.com/gpu");

        var onCpu = Find(Render(v => HelmSubset.Set(v, "inference.gpu.count", 0)), "Deployment", "inference");
        Assert.Null(Container(onCpu)["resources"]!["limits"]!["nvidia.com/gpu"]);
        Assert.Null(onCpu["spec"]!["template"]!["spec"]!["tolerations"]);

        var three = Find(Render(v => HelmSubset.Set(v, "inference.gpu.count", 3)), "Deployment", "inference");
        Assert.Equal(3, Container(three)["resources"]!["limits"]!["nvidia.com/gpu"]!.GetValue<int>());
    }

    [Theory]
    [InlineData("inference")]
    [InlineData("gateway")]
    public void KedaScalesOnTheManifestRule(string service)
    {
        var rule = manifest.Deployment(service)["autoscale"]!;
        var objects = Render();
        var scaled = Find(objects, "ScaledObject", service)["spec"]!;
        Assert.Equal(service, scaled["scaleTargetRef"]!["name"]!.GetValue<string>());
        Assert.Equal(rule["minReplicas"]!.GetValue<int>(), scaled["minReplicaCount"]!.GetValue<int>());
        Assert.Equal(rule["maxReplicas"]!.GetValue<int>(), scaled["maxReplicaCount"]!.GetValue<int>());
        var trigger = Assert.Single(scaled["triggers"]!.AsArray())!;
        Assert.Equal("prometheus", trigger["type"]!.GetValue<string>());
        Assert.Equal(rule["query"]!.GetValue<string>(), trigger["metadata"]!["query"]!.GetValue<string>());
        // KEDA reads trigger metadata as strings.
        Assert.Equal(rule["threshold"]!.GetValue<int>().ToString(System.Globalization.CultureInfo.InvariantCulture),
            trigger["metadata"]!["threshold"]!.GetValue<string>());
        // KEDA owns the replica count; the Deployment must not fight it on every upgrade.
        Assert.Null(Find(objects, "Deployment", service)["spec"]!["replicas"]);

        var fixedReplicas = Render(v => HelmSubset.Set(v, "autoscaling.enabled", false));
        Assert.DoesNotContain(fixedReplicas, o => o["kind"]!.GetValue<string>() == "ScaledObject");
        Assert.NotNull(Find(fixedReplicas, "Deployment", service)["spec"]!["replicas"]);
    }

    [Fact]
    public void PrometheusScrapesEveryServiceAsJobNamedAfterIt()
    {
        var objects = Render(v => HelmSubset.Set(v, "monitoring.serviceMonitor.enabled", true));
        var monitor = Find(objects, "ServiceMonitor", "aspireai")["spec"]!;
        Assert.Equal("app.kubernetes.io/name", monitor["jobLabel"]!.GetValue<string>());
        var selected = monitor["selector"]!["matchExpressions"]!.AsArray().Single()!["values"]!.AsArray().Select(v => v!.GetValue<string>());
        Assert.Equal(PublishedManifest.Services.Order(), selected.Order());
        foreach (var service in PublishedManifest.Services)
        {
            var metrics = manifest.Deployment(service)["metrics"]!;
            var endpoint = monitor["endpoints"]!.AsArray().Single()!;
            Assert.Equal(metrics["path"]!.GetValue<string>(), endpoint["path"]!.GetValue<string>());
            Assert.Equal(metrics["endpoint"]!.GetValue<string>(), endpoint["port"]!.GetValue<string>());
            // job = the Service's name: what the autoscaling queries and the dashboard select on.
            Assert.Equal(service, Find(objects, "Service", service)["metadata"]!["labels"]!["app.kubernetes.io/name"]!.GetValue<string>());
            var annotations = Find(objects, "Deployment", service)["spec"]!["template"]!["metadata"]!["annotations"]!;
            Assert.Equal("true", annotations["prometheus.io/scrape"]!.GetValue<string>());
            Assert.Equal(metrics["path"]!.GetValue<string>(), annotations["prometheus.io/path"]!.GetValue<string>());
            Assert.Equal("8080", annotations["prometheus.io/port"]!.GetValue<string>());
        }

        Assert.DoesNotContain(Render(), o => o["kind"]!.GetValue<string>() == "ServiceMonitor");
    }

    [Fact]
    public void ServicesRunAsTheImagesNonRootUser()
    {
        var objects = Render();
        foreach (var service in PublishedManifest.Services)
        {
            var csproj = Repository.PathOf(char.ToUpperInvariant(service[0]) + service[1..], char.ToUpperInvariant(service[0]) + service[1..] + ".csproj");
            var user = long.Parse(XDocument.Load(csproj).Descendants("ContainerUser").Single().Value, System.Globalization.CultureInfo.InvariantCulture);
            var pod = Find(objects, "Deployment", service)["spec"]!["template"]!["spec"]!;
            Assert.True(pod["securityContext"]!["runAsNonRoot"]!.GetValue<bool>());
            Assert.Equal(user, pod["securityContext"]!["runAsUser"]!.GetValue<long>());
            Assert.False(Container(Find(objects, "Deployment", service))["securityContext"]!["allowPrivilegeEscalation"]!.GetValue<bool>());
        }
    }

    [Fact]
    public void TheRendererRefusesWhatItCannotCheck()
    {
        var values = HelmSubset.LoadValues(Chart);
        Assert.Throws<FormatException>(() => HelmSubset.Render("name: {{ include \"x\" . }}\n", values));
        Assert.Throws<FormatException>(() => HelmSubset.Render("{{- if .Values.autoscaling.enabled }}\na: 1\n", values));
        Assert.Throws<KeyNotFoundException>(() => HelmSubset.Render("a: {{ .Values.inference.nope }}\n", values));
        Assert.Equal("a: \"x\\\"y\"\nb: 4\n", HelmSubset.Render("{{- if not .Values.autoscaling.enabled }}\nz: 1\n{{- else }}\na: {{ .Values.q | quote }}\n{{- end }}\nb: {{ .Values.inference.autoscaling.threshold }}\n",
            (JsonObject)JsonNode.Parse("""{"autoscaling":{"enabled":true},"q":"x\"y","inference":{"autoscaling":{"threshold":4}}}""")!));
    }
}
