using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using System.Xml.Linq;
using AspireAi.Deploy.Tests.Support;
using Json.Schema;

namespace AspireAi.Deploy.Tests;

/// <summary>
/// azd's side: azure.yaml against azd's own schema, the committed infrastructure (what `azd infra gen` writes, plus the
/// GPU workload profile) against the manifest's parameters and volumes, and inference's container-app template.
/// </summary>
public sealed partial class AzureDeploymentTests(PublishedManifest manifest)
{
    private static readonly string InfraFolder = Repository.PathOf("deploy", "azure", "infra");

    private static JsonNode AzureYaml() => Yaml.Parse(File.ReadAllText(Repository.PathOf("azure.yaml")))!;

    /// <summary>Loaded once: the schema registers itself under its $id, which may happen only once per process.</summary>
    private static readonly Lazy<JsonSchema> Schema = new(() =>
    {
        var text = File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "Schemas", "azure.yaml.json"));
        // The schema refers to azd extensions' own schemas (AI agent hosts) by URL; offline, and for hosts this project does
        // not use, each stands in as "anything goes".
        foreach (Match extension in ExtensionSchema().Matches(text))
        {
            SchemaRegistry.Global.Register(new Uri(extension.Groups[1].Value), JsonSchema.True);
        }

        return JsonSchema.FromText(text);
    });

    private static EvaluationResults Validate(JsonNode document)
    {
        return Schema.Value.Evaluate(JsonDocument.Parse(document.ToJsonString()).RootElement,
            new EvaluationOptions { OutputFormat = OutputFormat.List });
    }

    private static string Errors(EvaluationResults results) => string.Join("; ",
        (results.Details ?? []).Where(d => d.Errors is { Count: > 0 }).SelectMany(d => d.Errors!.Select(e => $"{d.InstanceLocation}: {e.Value}")));

    [Fact]
    public void AzureYamlIsValidAgainstAzdsSchema()
    {
        var results = Validate(AzureYaml());
        Assert.True(results.IsValid, Errors(results));
    }

    [Fact]
    public void TheSchemaCheckCatchesAWrongField()
    {
        var noHost = AzureYaml();
        noHost["services"]!["app"]!.AsObject().Remove("host");
        Assert.False(Validate(noHost).IsValid);
        var projectNotAPath = AzureYaml();
        projectNotAPath["services"]!["app"]!["project"] = 5;
        Assert.False(Validate(projectNotAPath).IsValid);
        var badName = AzureYaml();
        badName["name"] = "AspireAi";
        Assert.False(Validate(badName).IsValid);
    }

    [Fact]
    public void AzureYamlDeploysTheAppHostToContainerApps()
    {
        var yaml = AzureYaml();
        var app = Assert.Single(yaml["services"]!.AsObject());
        Assert.Equal("dotnet", app.Value!["language"]!.GetValue<string>());
        Assert.Equal("containerapp", app.Value!["host"]!.GetValue<string>());
        var project = Repository.PathOf(app.Value!["project"]!.GetValue<string>());
        Assert.StartsWith("Aspire.AppHost.Sdk/", XDocument.Load(project).Root!.Attribute("Sdk")!.Value);

        Assert.Equal("bicep", yaml["infra"]!["provider"]!.GetValue<string>());
        var infra = Repository.PathOf(yaml["infra"]!["path"]!.GetValue<string>());
        Assert.Equal(InfraFolder, Path.GetFullPath(infra));
        Assert.True(File.Exists(Path.Combine(infra, "main.bicep")));
        Assert.True(File.Exists(Path.Combine(infra, "main.parameters.json")));
    }

    /// <summary>deploy/azure/infra compiled by the Bicep compiler: no error, no warning; the ARM template it produces.</summary>
    private static async Task<JsonNode> CompileInfraAsync()
    {
        var output = Path.Combine(Directory.CreateTempSubdirectory("aspireai-bicep-").FullName, "main.json");
        try
        {
            var result = await ProcessResult.RunAsync(Repository.Bicep,
                ["build", Path.Combine(InfraFolder, "main.bicep"), "--outfile", output], TimeSpan.FromMinutes(2));
            Assert.True(result.ExitCode == 0, result.Output);
            Assert.DoesNotContain("Warning", result.Output);
            return JsonNode.Parse(await File.ReadAllTextAsync(output))!;
        }
        finally
        {
            Directory.Delete(Path.GetDirectoryName(output)!, recursive: true);
        }
    }

    [Fact]
    public async Task InfraCompilesAndTakesEveryParameterOfTheManifest()
    {
        var template = await CompileInfraAsync();
        var armParameters = template["parameters"]!.AsObject();
        var parameters = JsonNode.Parse(File.ReadAllText(Path.Combine(InfraFolder, "main.parameters.json")))!["parameters"]!.AsObject();
        var manifestParameters = manifest.Resources.Where(r => r.Value!["type"]!.GetValue<string>() == "parameter.v0").ToList();
        Assert.Equal(6, manifestParameters.Count);
        foreach (var (name, resource) in manifestParameters)
        {
            var bicepName = name.Replace('-', '_');
            var input = resource!["inputs"]!["value"]!;
            var declared = armParameters[bicepName] ?? throw new KeyNotFoundException($"main.bicep does not declare param {bicepName}");
            Assert.Equal(input["secret"]?.GetValue<bool>() == true ? "securestring" : "string", declared["type"]!.GetValue<string>());
            if (input["default"]?["generate"] is { } generate)
            {
                var config = declared["metadata"]!["azd"]!;
                Assert.Equal("generate", config["type"]!.GetValue<string>());
                Assert.Equal(generate["minLength"]!.GetValue<int>(), config["config"]!["length"]!.GetValue<int>());
                Assert.Equal(generate["special"]?.GetValue<bool>() == false, config["config"]!["noSpecial"]?.GetValue<bool>() == true);
            }

            var environmentVariable = "AZURE_" + bicepName.ToUpperInvariant();
            var value = parameters[bicepName]?["value"]?.GetValue<string>() ?? throw new KeyNotFoundException($"main.parameters.json has no {bicepName}");
            if (input["default"]?["value"] is { } defaultValue)
            {
                Assert.Equal(defaultValue.GetValue<string>(), declared["defaultValue"]!.GetValue<string>());
                Assert.Equal($"${{{environmentVariable}={defaultValue}}}", value);
            }
            else
            {
                Assert.Equal($"${{{environmentVariable}}}", value);
            }
        }

        // Every parameter the template needs without a default is given by main.parameters.json.
        foreach (var (name, declared) in armParameters)
        {
            Assert.True(declared!["defaultValue"] is not null || parameters.ContainsKey(name), $"nothing sets {name}");
        }

        // The outputs azd's generated container apps read for the stores' volumes.
        foreach (var store in PublishedManifest.Infrastructure)
        {
            foreach (var volume in manifest.Resource(store)["volumes"]!.AsArray())
            {
                var output = $"SERVICE_{store.ToUpperInvariant()}_VOLUME_{volume!["name"]!.GetValue<string>().Replace(".", "").Replace("-", "").ToUpperInvariant()}_NAME";
                Assert.NotNull(template["outputs"]![output]);
            }
        }
    }

    [Fact]
    public void InfraHasAFileShareForEveryStoreAndAGpuWorkloadProfile()
    {
        var resources = File.ReadAllText(Path.Combine(InfraFolder, "resources.bicep"));
        var mainBicep = File.ReadAllText(Path.Combine(InfraFolder, "main.bicep"));
        foreach (var store in PublishedManifest.Infrastructure)
        {
            // One Azure Files share and environment storage per store volume.
            Assert.Contains($"resource {store}DataFileShare 'Microsoft.Storage/storageAccounts/fileServices/shares@", resources);
            Assert.Contains($"resource {store}DataStore 'Microsoft.App/managedEnvironments/storages@", resources);
        }

        Assert.Matches(@"workloadProfileType: 'Consumption'\s+name: 'consumption'", resources);
        Assert.Matches(@"workloadProfileType: inferenceGpuProfileType\s+name: 'gpu'", resources);
        Assert.Contains("'Consumption-GPU-NC8as-T4'", mainBicep);
        Assert.Contains("'Consumption-GPU-NC24-A100'", mainBicep);
    }

    [Fact]
    public void InferenceRunsOnTheGpuProfileWithTheManifestsEnvironmentAndProbes()
    {
        var text = File.ReadAllText(Repository.PathOf("AppHost", "infra", "inference.tmpl.yaml"));
        var profileParameter = manifest.Deployment("inference")["gpu"]!["workloadProfile"]!.GetValue<string>().Trim('{', '}').Split('.')[0];
        var profileDefault = manifest.Resource(profileParameter)["inputs"]!["value"]!["default"]!["value"]!.GetValue<string>();
        Assert.Contains($"workloadProfileName: {{{{ parameterWithDefault \"{profileParameter.Replace('-', '_')}\" \"{profileDefault}\" }}}}", text);
        Assert.Contains("value: '{{ parameter \"inference_model\" }}'", text);

        // azd's template functions become plain text so that the YAML around them can be read.
        var app = Yaml.Parse(TemplateCall().Replace(text, "template"))!;
        Assert.Equal("template", app["properties"]!["workloadProfileName"]!.GetValue<string>());
        Assert.False(app["properties"]!["configuration"]!["ingress"]!["external"]!.GetValue<bool>());
        var container = app["properties"]!["template"]!["containers"]!.AsArray().Single()!;
        var env = container["env"]!.AsArray().Select(e => e!["name"]!.GetValue<string>()).ToHashSet();
        Assert.Empty(manifest.Env("inference").Keys.Except(env));

        var probes = container["probes"]!.AsArray().ToDictionary(p => p!["type"]!.GetValue<string>().ToLowerInvariant(), p => p!);
        foreach (var probe in manifest.Deployment("inference")["probes"]!.AsArray())
        {
            var type = probe!["type"]!.GetValue<string>();
            Assert.Equal(probe["path"]!.GetValue<string>(), probes[type]["httpGet"]!["path"]!.GetValue<string>());
            // Container Apps allow at most 10 failures: the same allowance (period x failures) in other steps.
            Assert.InRange(probes[type]["failureThreshold"]!.GetValue<int>(), 1, 10);
            Assert.Equal(probe["periodSeconds"]!.GetValue<int>() * probe["failureThreshold"]!.GetValue<int>(),
                probes[type]["periodSeconds"]!.GetValue<int>() * probes[type]["failureThreshold"]!.GetValue<int>());
        }

        var autoscale = manifest.Deployment("inference")["autoscale"]!;
        Assert.Equal(autoscale["minReplicas"]!.GetValue<int>(), app["properties"]!["template"]!["scale"]!["minReplicas"]!.GetValue<int>());
        Assert.Equal(autoscale["maxReplicas"]!.GetValue<int>(), app["properties"]!["template"]!["scale"]!["maxReplicas"]!.GetValue<int>());
        Assert.Equal("inference", app["tags"]!["azd-service-name"]!.GetValue<string>());
    }

    [GeneratedRegex(@"""\$ref"":\s*""(https://[^""]+)""")]
    private static partial Regex ExtensionSchema();

    [GeneratedRegex(@"\{\{[^}]*\}\}")]
    private static partial Regex TemplateCall();
}
