using System.Text.Json.Nodes;
using AspireAi.Deploy.Tests.Support;

[assembly: AssemblyFixture(typeof(PublishedManifest))]

namespace AspireAi.Deploy.Tests.Support;

/// <summary>
/// The AppHost's publish step, run once for the test assembly: <c>AspireAi.AppHost --publisher manifest --output-path DIR</c>
/// (Aspire.Hosting's own manifest publisher), exactly what azd runs. On this machine no Docker daemon answers, so it
/// also proves that publishing describes containers without probing for one.
/// </summary>
public sealed class PublishedManifest : IAsyncLifetime
{
    public static readonly string[] Services = ["inference", "retrieval", "agents", "gateway"];
    public static readonly string[] Infrastructure = ["redis", "postgres", "qdrant"];

    private readonly string _outputDirectory = Directory.CreateTempSubdirectory("aspireai-manifest-").FullName;

    public JsonObject Resources { get; private set; } = null!;

    public string PublishOutput { get; private set; } = "";

    public static string AppHostAssembly => Repository.PathOf("AppHost", "bin", Repository.Configuration, "net10.0", "AspireAi.AppHost.dll");

    public async ValueTask InitializeAsync()
    {
        var result = await PublishAsync(_outputDirectory);
        PublishOutput = result.Output;
        Assert.True(result.ExitCode == 0, $"publish failed ({result.ExitCode}): {result.Output}");
        var manifest = JsonNode.Parse(await File.ReadAllTextAsync(Path.Combine(_outputDirectory, "aspire-manifest.json")))!;
        Resources = manifest["resources"]!.AsObject();
    }

    public static Task<ProcessResult> PublishAsync(string outputDirectory, params string[] extraArgs) =>
        ProcessResult.RunAsync("dotnet", [AppHostAssembly, "--publisher", "manifest", "--output-path", outputDirectory, .. extraArgs],
            TimeSpan.FromMinutes(2),
            // Never the developer's own parameter values or user secrets: publishing must not need them.
            new Dictionary<string, string> { ["DOTNET_ENVIRONMENT"] = "Production", ["ASPNETCORE_ENVIRONMENT"] = "Production" });

    public JsonObject Resource(string name) =>
        Resources[name]?.AsObject() ?? throw new KeyNotFoundException($"The manifest has no resource '{name}'.");

    /// <summary>A service's <c>x-aspireai</c> entry (image, probes, metrics, gpu, autoscale).</summary>
    public JsonObject Deployment(string service) =>
        Resource(service)["x-aspireai"]?.AsObject() ?? throw new KeyNotFoundException($"'{service}' has no x-aspireai entry.");

    public IReadOnlyDictionary<string, string> Env(string name) =>
        (Resource(name)["env"]?.AsObject() ?? []).ToDictionary(kv => kv.Key, kv => kv.Value!.GetValue<string>());

    public ValueTask DisposeAsync()
    {
        Directory.Delete(_outputDirectory, recursive: true);
        return ValueTask.CompletedTask;
    }
}
