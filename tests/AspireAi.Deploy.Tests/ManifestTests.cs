using System.Text.Json.Nodes;
using System.Xml.Linq;
using AspireAi.Deploy.Tests.Support;

namespace AspireAi.Deploy.Tests;

/// <summary>The AppHost's published manifest: the contract that azd and the Helm chart are built from.</summary>
public sealed class ManifestTests(PublishedManifest manifest)
{
    /// <summary>Who references whom in the AppHost (Program.cs): service discovery and connection strings.</summary>
    public static readonly Dictionary<string, (string[] Services, string[] ConnectionStrings)> References = new()
    {
        ["inference"] = ([], []),
        ["retrieval"] = (["inference"], ["retrievaldb", "qdrant"]),
        ["agents"] = (["inference", "retrieval"], ["agentsdb"]),
        ["gateway"] = (["inference", "retrieval", "agents"], ["redis", "gatewaydb"]),
    };

    [Fact]
    public void PublishingDescribesContainersWithoutProbingForARuntime()
    {
        Assert.Contains("Infrastructure: containers (publishing describes containers)", manifest.PublishOutput);
        Assert.DoesNotContain(manifest.Resources, r => r.Value!["type"]!.GetValue<string>() == "executable.v0");
        foreach (var name in PublishedManifest.Infrastructure)
        {
            var resource = manifest.Resource(name);
            Assert.Equal("container.v0", resource["type"]!.GetValue<string>());
            Assert.False(string.IsNullOrEmpty(resource["image"]?.GetValue<string>()), $"{name} has no image");
            // Every store keeps its data on a named volume (a persistent volume in Kubernetes, Azure Files in Container Apps).
            var volume = Assert.Single(resource["volumes"]!.AsArray());
            Assert.Equal($"aspireai.apphost-{name}-data", volume!["name"]!.GetValue<string>());
        }
    }

    [Fact]
    public async Task PublishingRefusesLocalInfrastructureWithAClearError()
    {
        var output = Directory.CreateTempSubdirectory("aspireai-manifest-local-").FullName;
        try
        {
            var result = await PublishedManifest.PublishAsync(output, "--infra", "local");
            Assert.Equal(1, result.ExitCode);
            Assert.Contains("--infra 'local' cannot be published", result.Output);
            Assert.False(File.Exists(Path.Combine(output, "aspire-manifest.json")));
        }
        finally
        {
            Directory.Delete(output, recursive: true);
        }
    }

    [Theory]
    [InlineData("inference")]
    [InlineData("retrieval")]
    [InlineData("agents")]
    [InlineData("gateway")]
    public void ServiceIsAProjectWithTheImageItsCsprojPublishes(string service)
    {
        var resource = manifest.Resource(service);
        Assert.Equal("project.v0", resource["type"]!.GetValue<string>());
        var csproj = Path.GetFileName(resource["path"]!.GetValue<string>());
        var repository = XDocument.Load(Repository.PathOf(Path.GetFileNameWithoutExtension(csproj), csproj))
            .Descendants("ContainerRepository").Single().Value;
        Assert.Equal(repository, manifest.Deployment(service)["image"]!.GetValue<string>());
        Assert.Equal($"aspireai/{service}", repository);
    }

    [Theory]
    [InlineData("inference")]
    [InlineData("retrieval")]
    [InlineData("agents")]
    [InlineData("gateway")]
    public void ServiceHasReadinessAndLivenessProbesAndMetrics(string service)
    {
        var deployment = manifest.Deployment(service);
        var probes = deployment["probes"]!.AsArray().ToDictionary(p => p!["type"]!.GetValue<string>(), p => p!.AsObject());
        Assert.Equal("/health", probes["readiness"]["path"]!.GetValue<string>());
        Assert.Equal("/alive", probes["liveness"]["path"]!.GetValue<string>());
        foreach (var probe in probes.Values)
        {
            var endpoint = probe["endpoint"]!.GetValue<string>();
            Assert.NotNull(manifest.Resource(service)["bindings"]![endpoint]);
            Assert.InRange(probe["periodSeconds"]!.GetValue<int>(), 1, 60);
            Assert.InRange(probe["failureThreshold"]!.GetValue<int>(), 1, 100);
        }

        Assert.Equal("/metrics", deployment["metrics"]!["path"]!.GetValue<string>());
        // Only a model loads for long: inference alone gets a startup allowance, of ten minutes.
        if (service == "inference")
        {
            var startup = probes["startup"];
            Assert.Equal(600, startup["periodSeconds"]!.GetValue<int>() * startup["failureThreshold"]!.GetValue<int>());
        }
        else
        {
            Assert.False(probes.ContainsKey("startup"));
        }
    }

    [Theory]
    [InlineData("inference")]
    [InlineData("retrieval")]
    [InlineData("agents")]
    [InlineData("gateway")]
    public void ServiceReferencesExactlyWhatTheDiagramSays(string service)
    {
        var env = manifest.Env(service);
        var (services, connectionStrings) = References[service];
        Assert.Equal(services.Order(), env.Keys.Where(k => k.StartsWith("services__", StringComparison.Ordinal))
            .Select(k => k.Split("__")[1]).Order());
        foreach (var target in services)
        {
            Assert.Equal($"{{{target}.bindings.http.url}}", env[$"services__{target}__http__0"]);
        }

        Assert.Equal(connectionStrings.Order(), env.Keys.Where(k => k.StartsWith("ConnectionStrings__", StringComparison.Ordinal))
            .Select(k => k["ConnectionStrings__".Length..]).Order());
        foreach (var target in connectionStrings)
        {
            Assert.Equal($"{{{target}.connectionString}}", env[$"ConnectionStrings__{target}"]);
        }

        Assert.Equal($"{{{service}.bindings.http.targetPort}}", env["HTTP_PORTS"]);
    }

    [Fact]
    public void OnlyTheGatewayIsExternal()
    {
        var external = manifest.Resources
            .SelectMany(r => (r.Value!["bindings"]?.AsObject() ?? []).Select(b => (Resource: r.Key, Binding: b.Key, b.Value)))
            .Where(b => b.Value!["external"]?.GetValue<bool>() == true)
            .Select(b => $"{b.Resource}.{b.Binding}");
        Assert.Equal(["gateway.http"], external);
    }

    [Fact]
    public void InferenceRequestsAGpuOnAWorkloadProfileChosenByParameter()
    {
        var gpu = manifest.Deployment("inference")["gpu"]!;
        Assert.Equal(1, gpu["count"]!.GetValue<int>());
        Assert.Equal("{inference-gpu-profile.value}", gpu["workloadProfile"]!.GetValue<string>());
        var parameter = manifest.Resource("inference-gpu-profile");
        Assert.Equal("parameter.v0", parameter["type"]!.GetValue<string>());
        Assert.Equal("gpu", parameter["inputs"]!["value"]!["default"]!["value"]!.GetValue<string>());
        Assert.NotEqual(true, parameter["inputs"]!["value"]!["secret"]?.GetValue<bool>());
        foreach (var other in new[] { "retrieval", "agents", "gateway" })
        {
            Assert.Null(manifest.Deployment(other)["gpu"]);
        }
    }

    [Fact]
    public void InferenceScalesOnQueueDepthAndGatewayOnRequestRate()
    {
        var inference = manifest.Deployment("inference")["autoscale"]!;
        Assert.Equal("vllm:num_requests_waiting", inference["metric"]!.GetValue<string>());
        Assert.Equal("sum(vllm:num_requests_waiting{job=\"inference\"})", inference["query"]!.GetValue<string>());
        Assert.Equal(4, inference["threshold"]!.GetValue<int>());
        Assert.Equal((1, 4), (inference["minReplicas"]!.GetValue<int>(), inference["maxReplicas"]!.GetValue<int>()));

        var gateway = manifest.Deployment("gateway")["autoscale"]!;
        Assert.Equal("http_server_request_duration_seconds_count", gateway["metric"]!.GetValue<string>());
        Assert.Contains("rate(http_server_request_duration_seconds_count{job=\"gateway\"}", gateway["query"]!.GetValue<string>());
        Assert.Equal(50, gateway["threshold"]!.GetValue<int>());
        Assert.Equal((1, 10), (gateway["minReplicas"]!.GetValue<int>(), gateway["maxReplicas"]!.GetValue<int>()));

        Assert.Null(manifest.Deployment("retrieval")["autoscale"]);
        Assert.Null(manifest.Deployment("agents")["autoscale"]);
    }

    [Fact]
    public void SecretsAreSecretParametersWithNoValueInTheManifest()
    {
        foreach (var name in new[] { "gateway-master-key", "redis-password", "postgres-password", "qdrant-api-key" })
        {
            var input = manifest.Resource(name)["inputs"]!["value"]!;
            Assert.True(input["secret"]!.GetValue<bool>(), $"{name} is not secret");
            Assert.Null(input["default"]?["value"]);
        }

        Assert.Equal("{gateway-master-key.value}", manifest.Env("gateway")["Gateway__MasterKey"]);
        // The model is chosen at deploy time: a path on the publishing machine would mean nothing in a container.
        Assert.Equal("{inference-model.value}", manifest.Env("inference")["Inference__Model"]);
    }
}
