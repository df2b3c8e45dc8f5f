using System.Text.Json;
using System.Text.RegularExpressions;
using AspireAi.Agents.Tools;

namespace AspireAi.Agents.Definitions;

/// <summary>Reads an agent definition from a request body, naming the field and the problem for anything wrong.</summary>
internal static partial class AgentDefinitionParser
{
    [GeneratedRegex("^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]
    public static partial Regex NamePattern();

    public static void ValidateName(string name, string param = "name")
    {
        if (!NamePattern().IsMatch(name))
        {
            throw RequestException.BadRequest(
                $"'{name}' is not a valid agent name: 1-64 characters of letters, digits, '_', '.', '-', starting with a letter or digit.", param);
        }
    }

    /// <summary>Parses <paramref name="body"/>; <paramref name="nameFromPath"/> (PUT) wins over a missing body name and must match a present one.</summary>
    public static AgentDefinition Parse(JsonElement body, string? nameFromPath = null)
    {
        if (body.ValueKind != JsonValueKind.Object)
        {
            throw RequestException.BadRequest("The request body must be a JSON object describing the agent.");
        }

        var name = OptionalString(body, "name") ?? nameFromPath ?? throw RequestException.BadRequest("'name' is required.", "name");
        if (nameFromPath is not null && name != nameFromPath)
        {
            throw RequestException.BadRequest($"The body's name '{name}' differs from the path's '{nameFromPath}'; agents cannot be renamed.", "name");
        }

        ValidateName(name);
        var instructions = OptionalString(body, "instructions") ?? throw RequestException.BadRequest("'instructions' is required.", "instructions");
        var model = OptionalString(body, "model") ?? throw RequestException.BadRequest("'model' is required.", "model");
        if (string.IsNullOrWhiteSpace(model) || model.StartsWith("agent:", StringComparison.Ordinal))
        {
            throw RequestException.BadRequest($"'model' must name an inference model, not '{model}'.", "model");
        }

        return new AgentDefinition
        {
            Name = name,
            Description = OptionalString(body, "description") ?? "",
            Instructions = instructions,
            Model = model,
            PlannerModel = OptionalString(body, "planner_model"),
            Planning = OptionalBool(body, "planning") ?? false,
            Tools = ParseTools(body),
            Limits = ParseLimits(body),
        };
    }

    /// <summary>
    /// Refuses tools that name a resource this service is not configured with (an MCP server, a SQL connection): the
    /// mistake shows when the agent is defined, not only when it first runs. A run still checks again, as configuration
    /// may change after the definition was stored.
    /// </summary>
    public static void ValidateConfigured(AgentDefinition agent, AgentsOptions options)
    {
        for (var index = 0; index < agent.Tools.Count; index++)
        {
            var spec = agent.Tools[index];
            (string? name, IEnumerable<string> configured, string param, string section) = spec.Type switch
            {
                ToolTypes.Mcp => (spec.Server, options.Mcp.Servers.Keys, "server", "Agents:Mcp:Servers"),
                ToolTypes.SqlQuery => (spec.Connection, options.Sql.Connections.Keys, "connection", "Agents:Sql:Connections"),
                _ => ((string?)null, (IEnumerable<string>)[], "", ""),
            };
            if (name is not null && !configured.Contains(name))
            {
                var known = configured.Any() ? $"configured: {string.Join(", ", configured.Order(StringComparer.Ordinal))}" : "none is configured";
                throw RequestException.BadRequest($"tools[{index}]: {spec.Type} names '{name}', which is not configured under {section} ({known}).", $"tools[{index}].{param}");
            }
        }
    }

    private static List<ToolSpec> ParseTools(JsonElement body)
    {
        var tools = new List<ToolSpec>();
        if (!body.TryGetProperty("tools", out var array) || array.ValueKind == JsonValueKind.Null)
        {
            return tools;
        }

        if (array.ValueKind != JsonValueKind.Array)
        {
            throw RequestException.BadRequest("'tools' must be an array of tool names or objects.", "tools");
        }

        var index = 0;
        foreach (var item in array.EnumerateArray())
        {
            var param = $"tools[{index++}]";
            var spec = item.ValueKind switch
            {
                JsonValueKind.String => new ToolSpec { Type = item.GetString()! },
                JsonValueKind.Object => new ToolSpec
                {
                    Type = OptionalString(item, "type", param) ?? throw RequestException.BadRequest($"{param}.type is required.", $"{param}.type"),
                    RequiresApproval = OptionalBool(item, "requires_approval", param) ?? false,
                    Collection = OptionalString(item, "collection", param),
                    AllowedHosts = OptionalStrings(item, "allowed_hosts", param),
                    Connection = OptionalString(item, "connection", param),
                    Server = OptionalString(item, "server", param),
                },
                _ => throw RequestException.BadRequest($"{param} must be a tool name or an object with 'type'.", param),
            };
            if (!ToolTypes.All.Contains(spec.Type))
            {
                throw RequestException.BadRequest($"{param}: unknown tool type '{spec.Type}'; known: {string.Join(", ", ToolTypes.All)}.", $"{param}.type");
            }

            switch (spec.Type)
            {
                case ToolTypes.HttpFetch when spec.AllowedHosts is not { Count: > 0 }:
                    throw RequestException.BadRequest($"{param}: http_fetch needs 'allowed_hosts' (the hosts it may fetch from).", $"{param}.allowed_hosts");
                case ToolTypes.SqlQuery when string.IsNullOrWhiteSpace(spec.Connection):
                    throw RequestException.BadRequest($"{param}: sql_query needs 'connection' (a name under Agents:Sql:Connections).", $"{param}.connection");
                case ToolTypes.Mcp when string.IsNullOrWhiteSpace(spec.Server):
                    throw RequestException.BadRequest($"{param}: mcp needs 'server' (a name under Agents:Mcp:Servers).", $"{param}.server");
            }

            if (tools.Any(t => t.Type == spec.Type && t.Server == spec.Server))
            {
                throw RequestException.BadRequest($"{param}: tool '{spec.Type}' is listed twice.", param);
            }

            tools.Add(spec);
        }

        return tools;
    }

    private static RunLimits ParseLimits(JsonElement body)
    {
        var defaults = new RunLimits();
        if (!body.TryGetProperty("limits", out var limits) || limits.ValueKind == JsonValueKind.Null)
        {
            return defaults;
        }

        if (limits.ValueKind != JsonValueKind.Object)
        {
            throw RequestException.BadRequest("'limits' must be an object.", "limits");
        }

        foreach (var property in limits.EnumerateObject())
        {
            if (property.Name is not ("max_steps" or "max_tokens" or "max_wall_seconds" or "max_tool_calls" or "max_replans" or "max_cost"))
            {
                throw RequestException.BadRequest($"Unknown limit 'limits.{property.Name}'.", $"limits.{property.Name}");
            }
        }

        return new RunLimits
        {
            MaxSteps = PositiveInt(limits, "max_steps", 1, 64) ?? defaults.MaxSteps,
            MaxTokens = PositiveInt(limits, "max_tokens", 1, 10_000_000) ?? defaults.MaxTokens,
            MaxWallSeconds = PositiveInt(limits, "max_wall_seconds", 1, 86_400) ?? defaults.MaxWallSeconds,
            MaxToolCalls = PositiveInt(limits, "max_tool_calls", 0, 1000) ?? defaults.MaxToolCalls,
            MaxReplans = PositiveInt(limits, "max_replans", 0, 10) ?? defaults.MaxReplans,
            MaxCost = limits.TryGetProperty("max_cost", out var cost) && cost.ValueKind != JsonValueKind.Null
                ? cost.ValueKind == JsonValueKind.Number && cost.GetDecimal() >= 0 ? cost.GetDecimal()
                    : throw RequestException.BadRequest("limits.max_cost must be a number ≥ 0.", "limits.max_cost")
                : null,
        };
    }

    private static int? PositiveInt(JsonElement obj, string name, int min, int max)
    {
        if (!obj.TryGetProperty(name, out var value) || value.ValueKind == JsonValueKind.Null)
        {
            return null;
        }

        if (value.ValueKind != JsonValueKind.Number || !value.TryGetInt32(out var number) || number < min || number > max)
        {
            throw RequestException.BadRequest($"limits.{name} must be an integer from {min} to {max}.", $"limits.{name}");
        }

        return number;
    }

    private static string? OptionalString(JsonElement obj, string name, string? parent = null)
    {
        if (!obj.TryGetProperty(name, out var value) || value.ValueKind == JsonValueKind.Null)
        {
            return null;
        }

        return value.ValueKind == JsonValueKind.String
            ? value.GetString()
            : throw RequestException.BadRequest($"'{Path(parent, name)}' must be a string.", Path(parent, name));
    }

    private static bool? OptionalBool(JsonElement obj, string name, string? parent = null)
    {
        if (!obj.TryGetProperty(name, out var value) || value.ValueKind == JsonValueKind.Null)
        {
            return null;
        }

        return value.ValueKind is JsonValueKind.True or JsonValueKind.False
            ? value.GetBoolean()
            : throw RequestException.BadRequest($"'{Path(parent, name)}' must be true or false.", Path(parent, name));
    }

    private static List<string>? OptionalStrings(JsonElement obj, string name, string parent)
    {
        if (!obj.TryGetProperty(name, out var value) || value.ValueKind == JsonValueKind.Null)
        {
            return null;
        }

        if (value.ValueKind != JsonValueKind.Array || value.EnumerateArray().Any(v => v.ValueKind != JsonValueKind.String || string.IsNullOrWhiteSpace(v.GetString())))
        {
            throw RequestException.BadRequest($"'{Path(parent, name)}' must be an array of non-empty strings.", Path(parent, name));
        }

        return [.. value.EnumerateArray().Select(v => v.GetString()!.Trim().ToLowerInvariant())];
    }

    private static string Path(string? parent, string name) => parent is null ? name : $"{parent}.{name}";
}
