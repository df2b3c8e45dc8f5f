using System.Globalization;
using System.Text.Json.Nodes;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace AspireAi.Deploy.Tests.Support;

/// <summary>YAML documents as <see cref="JsonNode"/>s, with YAML 1.2 core-schema types for plain scalars (as Kubernetes and Helm read them).</summary>
internal static class Yaml
{
    public static JsonNode? Parse(string text) => ParseAll(text).Single();

    public static IReadOnlyList<JsonNode?> ParseAll(string text)
    {
        var stream = new YamlStream();
        stream.Load(new StringReader(text));
        return stream.Documents.Select(d => ToJson(d.RootNode)).ToList();
    }

    private static JsonNode? ToJson(YamlNode node) => node switch
    {
        YamlMappingNode map => new JsonObject(map.Children.Select(kv =>
            KeyValuePair.Create(((YamlScalarNode)kv.Key).Value!, ToJson(kv.Value)))),
        YamlSequenceNode list => new JsonArray(list.Children.Select(ToJson).ToArray()),
        YamlScalarNode scalar => Scalar(scalar),
        _ => throw new NotSupportedException($"YAML node {node.GetType().Name} at {node.Start}"),
    };

    private static JsonNode? Scalar(YamlScalarNode scalar)
    {
        var text = scalar.Value ?? "";
        if (scalar.Style is not (ScalarStyle.Plain or ScalarStyle.Any))
        {
            return JsonValue.Create(text);
        }

        return text switch
        {
            "" or "~" or "null" or "Null" or "NULL" => null,
            "true" or "True" or "TRUE" => JsonValue.Create(true),
            "false" or "False" or "FALSE" => JsonValue.Create(false),
            // Numbers as JSON number tokens, readable as int or long alike.
            _ when long.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var i) =>
                JsonNode.Parse(i.ToString(CultureInfo.InvariantCulture)),
            _ when System.Text.RegularExpressions.Regex.IsMatch(text, @"^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$")
                => JsonNode.Parse(double.Parse(text, CultureInfo.InvariantCulture).ToString("R", CultureInfo.InvariantCulture)),
            _ => JsonValue.Create(text),
        };
    }
}
