using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace AspireAi.Deploy.Tests.Support;

/// <summary>
/// Renders the chart's templates offline. No helm binary is obtainable here (no registry serves one), so the chart keeps
/// to a small subset of Helm's template language that this renderer implements exactly as Helm does for it:
/// <c>{{ .Values.a.b }}</c>, <c>{{ .Values.a.b | quote }}</c>, lines holding only <c>{{- if [not] .Values.x }}</c>,
/// <c>{{- else }}</c>, <c>{{- end }}</c> or <c>{{- toYaml .Values.x | nindent N }}</c>. Anything else is an error, so the
/// chart cannot drift outside what the tests can check. A missing value is an error too (Helm would print nothing).
/// </summary>
internal static partial class HelmSubset
{
    public static JsonObject LoadValues(string chartDirectory) =>
        (JsonObject)Yaml.Parse(File.ReadAllText(Path.Combine(chartDirectory, "values.yaml")))!;

    /// <summary>Every template of the chart rendered and parsed: the Kubernetes objects, in file order.</summary>
    public static IReadOnlyList<JsonObject> RenderChart(string chartDirectory, JsonObject values)
    {
        var objects = new List<JsonObject>();
        foreach (var file in Directory.GetFiles(Path.Combine(chartDirectory, "templates"), "*.yaml").Order(StringComparer.Ordinal))
        {
            var rendered = Render(File.ReadAllText(file), values, Path.GetFileName(file));
            objects.AddRange(Yaml.ParseAll(rendered).OfType<JsonObject>());
        }

        return objects;
    }

    public static string Render(string template, JsonObject values, string fileName = "template")
    {
        var output = new StringBuilder();
        var emitting = new Stack<(bool Parent, bool Condition, bool InElse)>();
        var active = true;
        var lines = template.EndsWith('\n') ? template[..^1].Split('\n') : template.Split('\n');
        for (var i = 0; i < lines.Length; i++)
        {
            var line = lines[i];
            var where = $"{fileName}:{i + 1}";
            var trimmed = line.Trim();
            if (IfLine().Match(trimmed) is { Success: true } ifMatch)
            {
                var value = Truthy(Lookup(values, ifMatch.Groups["path"].Value, where));
                var condition = ifMatch.Groups["not"].Success ? !value : value;
                emitting.Push((active, condition, false));
                active = active && condition;
                continue;
            }

            if (trimmed == "{{- else }}")
            {
                var (parent, condition, inElse) = emitting.Count > 0 ? emitting.Pop() : throw new FormatException($"{where}: else without if");
                if (inElse)
                {
                    throw new FormatException($"{where}: a second else");
                }

                emitting.Push((parent, condition, true));
                active = parent && !condition;
                continue;
            }

            if (trimmed == "{{- end }}")
            {
                active = (emitting.Count > 0 ? emitting.Pop() : throw new FormatException($"{where}: end without if")).Parent;
                continue;
            }

            if (ToYamlLine().Match(trimmed) is { Success: true } toYaml)
            {
                if (active)
                {
                    var indent = new string(' ', int.Parse(toYaml.Groups["indent"].Value, CultureInfo.InvariantCulture));
                    foreach (var yamlLine in ToYaml(Lookup(values, toYaml.Groups["path"].Value, where)))
                    {
                        output.Append(indent).Append(yamlLine).Append('\n');
                    }
                }

                continue;
            }

            var substituted = Substitution().Replace(line, m =>
            {
                var value = Lookup(values, m.Groups["path"].Value, where);
                return m.Groups["quote"].Success ? Quote(GoString(value, where)) : GoString(value, where);
            });
            if (substituted.Contains("{{", StringComparison.Ordinal))
            {
                throw new FormatException($"{where}: template construct outside the chart's subset: {trimmed}");
            }

            if (active)
            {
                output.Append(substituted).Append('\n');
            }
        }

        return emitting.Count == 0 ? output.ToString() : throw new FormatException($"{fileName}: {emitting.Count} if without end");
    }

    /// <summary>Sets a value by dotted path, as <c>helm --set a.b=v</c> would.</summary>
    public static void Set(JsonObject values, string path, JsonNode? value)
    {
        var parts = path.Split('.');
        var node = values;
        foreach (var part in parts[..^1])
        {
            node = node[part] as JsonObject ?? throw new KeyNotFoundException($"values have no '{path}'");
        }

        node[parts[^1]] = value;
    }

    private static JsonNode? Lookup(JsonObject values, string path, string where)
    {
        JsonNode? node = values;
        foreach (var part in path.Split('.'))
        {
            node = node is JsonObject obj && obj.TryGetPropertyValue(part, out var child)
                ? child
                : throw new KeyNotFoundException($"{where}: values have no '.Values.{path}'");
        }

        return node;
    }

    /// <summary>Go templates' truth: false, 0, null and empty strings or collections are false.</summary>
    private static bool Truthy(JsonNode? node) => node switch
    {
        null => false,
        JsonObject obj => obj.Count > 0,
        JsonArray array => array.Count > 0,
        _ => node.GetValueKind() switch
        {
            JsonValueKind.True => true,
            JsonValueKind.False => false,
            JsonValueKind.Number => decimal.Parse(node.ToJsonString(), NumberStyles.Float, CultureInfo.InvariantCulture) != 0,
            _ => node.GetValue<string>().Length > 0,
        },
    };

    private static string GoString(JsonNode? node, string where) => node switch
    {
        null => "",
        JsonObject or JsonArray => throw new FormatException($"{where}: a map or list printed as text; use toYaml"),
        _ => node.GetValueKind() switch
        {
            JsonValueKind.True => "true",
            JsonValueKind.False => "false",
            JsonValueKind.Number => node.ToJsonString(),
            _ => node.GetValue<string>(),
        },
    };

    /// <summary>Sprig's quote: Go's %q of the text, which for what a chart holds escapes backslashes and double quotes.</summary>
    private static string Quote(string text) => "\"" + text.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\"", "\\\"", StringComparison.Ordinal) + "\"";

    /// <summary>Block YAML for a map or list (JSON is YAML; one key or item a line, nested values as flow JSON).</summary>
    private static IEnumerable<string> ToYaml(JsonNode? node) => node switch
    {
        JsonObject { Count: 0 } => ["{}"],
        JsonObject obj => obj.Select(kv => $"{kv.Key}: {Flow(kv.Value)}"),
        JsonArray { Count: 0 } => ["[]"],
        JsonArray array => array.Select(item => $"- {Flow(item)}"),
        _ => [Flow(node)],
    };

    private static string Flow(JsonNode? node) => node?.ToJsonString() ?? "null";

    [GeneratedRegex(@"^\{\{- if (?<not>not )?\.Values\.(?<path>[A-Za-z0-9_.]+) \}\}$")]
    private static partial Regex IfLine();

    [GeneratedRegex(@"^\{\{- toYaml \.Values\.(?<path>[A-Za-z0-9_.]+) \| nindent (?<indent>\d+) \}\}$")]
    private static partial Regex ToYamlLine();

    [GeneratedRegex(@"\{\{ \.Values\.(?<path>[A-Za-z0-9_.]+)(?<quote> \| quote)? \}\}")]
    private static partial Regex Substitution();
}
