using System.Text.RegularExpressions;

namespace AspireAi.Deploy.Tests.Support;

/// <summary>
/// Resolves the manifest's value expressions (<c>{postgres.connectionString}</c>, <c>{inference.bindings.http.url}</c>,
/// <c>{gateway-master-key.value}</c>) the way a Kubernetes deployment realises them: a resource's host is its Service's
/// name, a binding's port its target port (8080 for a project: ASP.NET Core's container default, HTTP_PORTS), a secret
/// parameter a marker <c>⟨secret:NAME⟩</c> and any other parameter <c>⟨param:NAME⟩</c>.
/// </summary>
internal sealed partial class ManifestExpressions(PublishedManifest manifest)
{
    public const int ProjectPort = 8080;

    public static string Secret(string parameter) => $"⟨secret:{parameter}⟩";

    public static string Parameter(string parameter) => $"⟨param:{parameter}⟩";

    public string Resolve(string value) => Reference().Replace(value, m => ResolveReference(m.Groups[1].Value));

    public int TargetPort(string resource, string binding) =>
        manifest.Resource(resource)["bindings"]?[binding]?["targetPort"]?.GetValue<int>() ?? ProjectPort;

    private string ResolveReference(string reference)
    {
        var parts = reference.Split('.');
        var resource = manifest.Resource(parts[0]);
        var type = resource["type"]!.GetValue<string>();
        switch (parts[1..])
        {
            case ["connectionString"]:
                return Resolve(resource["connectionString"]!.GetValue<string>());
            case ["value"] when type == "parameter.v0":
                return resource["inputs"]?["value"]?["secret"]?.GetValue<bool>() == true ? Secret(parts[0]) : Parameter(parts[0]);
            case ["value"] when type == "annotated.string":
                // URI-encoding a secret has no Kubernetes equivalent (env expansion cannot encode); see HelmChartTests.
                return $"⟨{resource["filter"]}:{Resolve(resource["value"]!.GetValue<string>())}⟩";
            case ["bindings", var binding, var property]:
                var scheme = resource["bindings"]![binding]!["scheme"]!.GetValue<string>();
                return property switch
                {
                    "host" => parts[0],
                    "port" or "targetPort" => TargetPort(parts[0], binding).ToString(System.Globalization.CultureInfo.InvariantCulture),
                    "scheme" => scheme,
                    "url" => $"{scheme}://{parts[0]}:{TargetPort(parts[0], binding)}",
                    _ => throw new NotSupportedException($"binding property '{reference}'"),
                };
            default:
                throw new NotSupportedException($"manifest expression '{{{reference}}}'");
        }
    }

    [GeneratedRegex(@"\{([A-Za-z0-9-]+(?:\.[A-Za-z0-9_-]+)+)\}")]
    private static partial Regex Reference();
}
