using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace AspireAi.Inference.Serving.Tools;

/// <summary>How a model family writes tool calls in its output.</summary>
public enum ToolCallStyle
{
    /// <summary>Hermes / Qwen 2.5–3: <c>&lt;tool_call&gt;{"name": …, "arguments": {…}}&lt;/tool_call&gt;</c>, one block per call (also the fallback template's).</summary>
    Hermes,

    /// <summary>Llama 3.1–3.3 JSON tool calling: the whole answer is <c>{"name": …, "parameters": {…}}</c>, maybe after <c>&lt;|python_tag|&gt;</c>.</summary>
    Llama3Json,

    /// <summary>Mistral: <c>[TOOL_CALLS][{"name": …, "arguments": {…}}, …]</c> (the marker is a control token, so the text starts at <c>[</c>).</summary>
    Mistral,
}

/// <summary>A tool call parsed from model output; <see cref="ArgumentsJson"/> is a JSON object.</summary>
public sealed record ParsedToolCall(string Id, string Name, string ArgumentsJson)
{
    public static string NewId() => "call_" + Guid.NewGuid().ToString("N")[..24];
}

/// <summary>Recognises a model family's tool-call syntax (from its chat template), parses calls out of output, and gives the
/// literal text around a forced call for constrained decoding.</summary>
public sealed partial class ToolCallFormat
{
    private ToolCallFormat(ToolCallStyle style) => Style = style;

    public ToolCallStyle Style { get; }

    /// <summary>The key under which this family writes arguments.</summary>
    public string ArgumentsKey => Style == ToolCallStyle.Llama3Json ? "parameters" : "arguments";

    /// <summary>Text before and after the JSON of a forced call.</summary>
    public (string Prefix, string Suffix) Wrapping => Style switch
    {
        ToolCallStyle.Hermes => ("<tool_call>\n", "\n</tool_call>"),
        ToolCallStyle.Mistral => ("[", "]"),
        _ => ("", ""),
    };

    public static ToolCallFormat Detect(string templateSource)
    {
        if (templateSource.Contains("[TOOL_CALLS]", StringComparison.Ordinal))
        {
            return new ToolCallFormat(ToolCallStyle.Mistral);
        }

        if (templateSource.Contains("<tool_call>", StringComparison.Ordinal))
        {
            return new ToolCallFormat(ToolCallStyle.Hermes);
        }

        if (templateSource.Contains("<|python_tag|>", StringComparison.Ordinal)
            || (templateSource.Contains("ipython", StringComparison.Ordinal) && templateSource.Contains("parameters", StringComparison.Ordinal)))
        {
            return new ToolCallFormat(ToolCallStyle.Llama3Json);
        }

        return new ToolCallFormat(ToolCallStyle.Hermes);
    }

    /// <summary>JSON Schema of one call to any of <paramref name="tools"/> (OpenAI tool definitions), for constrained decoding.</summary>
    public JsonElement CallSchema(IReadOnlyList<JsonElement> tools)
    {
        var options = new JsonArray();
        foreach (var tool in tools)
        {
            var function = tool.GetProperty("function");
            var parameters = function.TryGetProperty("parameters", out var p) ? JsonNode.Parse(p.GetRawText())! : new JsonObject { ["type"] = "object" };
            options.Add(new JsonObject
            {
                ["type"] = "object",
                ["properties"] = new JsonObject
                {
                    ["name"] = new JsonObject { ["const"] = function.GetProperty("name").GetString() },
                    [ArgumentsKey] = parameters,
                },
                ["required"] = new JsonArray("name", ArgumentsKey),
            });
        }

        // Mistral's list brackets are part of the wrapping: the schema is one element.
        JsonNode call = options.Count == 1 ? options[0]!.DeepClone() : new JsonObject { ["anyOf"] = options };
        return JsonSerializer.SerializeToElement(call);
    }

    /// <summary>Splits finished output into plain content (null when none) and tool calls.</summary>
    public (string? Content, List<ParsedToolCall> Calls) Parse(string text)
    {
        var calls = new List<ParsedToolCall>();
        switch (Style)
        {
            case ToolCallStyle.Hermes:
            {
                var first = text.IndexOf("<tool_call>", StringComparison.Ordinal);
                if (first < 0)
                {
                    return (text, calls);
                }

                foreach (Match m in HermesCall().Matches(text, first))
                {
                    if (ToCall(m.Groups[1].Value) is { } call)
                    {
                        calls.Add(call);
                    }
                }

                if (calls.Count == 0)
                {
                    return (text, calls);
                }

                var content = text[..first].Trim();
                return (content.Length == 0 ? null : content, calls);
            }

            case ToolCallStyle.Llama3Json:
            {
                var body = text.Trim();
                if (body.StartsWith("<|python_tag|>", StringComparison.Ordinal))
                {
                    body = body["<|python_tag|>".Length..].Trim();
                }

                if (body.StartsWith('{') && ToCall(body) is { } call)
                {
                    calls.Add(call);
                    return (null, calls);
                }

                return (text, calls);
            }

            default:
            {
                var body = text.Trim();
                if (body.StartsWith("[TOOL_CALLS]", StringComparison.Ordinal))
                {
                    body = body["[TOOL_CALLS]".Length..].Trim();
                }

                if (!body.StartsWith('['))
                {
                    return (text, calls);
                }

                try
                {
                    using var document = JsonDocument.Parse(body);
                    foreach (var element in document.RootElement.EnumerateArray())
                    {
                        if (ToCall(element.GetRawText()) is { } call)
                        {
                            calls.Add(call);
                        }
                    }
                }
                catch (JsonException)
                {
                    return (text, []);
                }
                catch (InvalidOperationException)
                {
                    return (text, []);
                }

                return calls.Count > 0 ? (null, calls) : (text, calls);
            }
        }
    }

    private ParsedToolCall? ToCall(string json)
    {
        try
        {
            using var document = JsonDocument.Parse(json);
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty("name", out var name) || name.ValueKind != JsonValueKind.String)
            {
                return null;
            }

            var arguments = root.TryGetProperty("arguments", out var a) ? a : root.TryGetProperty("parameters", out var p) ? p : default;
            var argumentsJson = arguments.ValueKind switch
            {
                JsonValueKind.Object => arguments.GetRawText(),
                JsonValueKind.String => arguments.GetString()!, // some models write the arguments as a JSON string
                _ => "{}",
            };
            return new ParsedToolCall(ParsedToolCall.NewId(), name.GetString()!, argumentsJson);
        }
        catch (JsonException)
        {
            return null;
        }
    }

    [GeneratedRegex(@"<tool_call>\s*(\{.*?\})\s*(?:</tool_call>|$)", RegexOptions.Singleline)]
    private static partial Regex HermesCall();

    /// <summary>A parser for streamed output: content is passed on as it comes, except text that may be (part of) a tool call.</summary>
    public StreamingToolCallParser Stream() => new(this);
}

/// <summary>
/// Streams content deltas while holding back anything that may be a tool call: for Hermes from <c>&lt;tool_call&gt;</c> (and
/// any text that could be its beginning) on; for the JSON styles, the whole answer once it starts with <c>{</c> or <c>[</c>.
/// Calls are emitted whole, each as one delta, when the output ends.
/// </summary>
public sealed class StreamingToolCallParser(ToolCallFormat format)
{
    private const string HermesOpen = "<tool_call>";
    private readonly StringBuilder _held = new();
    private bool _inCall;
    private bool _sawText;

    /// <summary>Adds generated text; returns the content that can be shown now.</summary>
    public string Push(string text)
    {
        if (_inCall)
        {
            _held.Append(text);
            return "";
        }

        _held.Append(text);
        var held = _held.ToString();
        if (format.Style != ToolCallStyle.Hermes)
        {
            var trimmed = held.TrimStart();
            if (!_sawText && trimmed.Length == 0)
            {
                return "";
            }

            if (!_sawText && (trimmed.StartsWith('{') || trimmed.StartsWith('[') || trimmed.StartsWith("<|python_tag|>", StringComparison.Ordinal)
                || "<|python_tag|>".StartsWith(trimmed, StringComparison.Ordinal)))
            {
                _inCall = trimmed.StartsWith('{') || trimmed.StartsWith('[') || trimmed.StartsWith("<|python_tag|>", StringComparison.Ordinal);
                return "";
            }

            _sawText = true;
            _held.Clear();
            return held;
        }

        var open = held.IndexOf(HermesOpen, StringComparison.Ordinal);
        if (open >= 0)
        {
            _inCall = true;
            _held.Remove(0, open);
            return held[..open];
        }

        // Keep back a tail that could still grow into "<tool_call>".
        var keep = 0;
        for (var n = Math.Min(HermesOpen.Length - 1, held.Length); n > 0; n--)
        {
            if (held.AsSpan(held.Length - n).SequenceEqual(HermesOpen.AsSpan(0, n)))
            {
                keep = n;
                break;
            }
        }

        _held.Remove(0, held.Length - keep);
        return held[..^keep];
    }

    /// <summary>Ends the output: the remaining content (text that turned out not to be a call) and the calls.</summary>
    public (string Content, List<ParsedToolCall> Calls) Finish()
    {
        var held = _held.ToString();
        _held.Clear();
        if (!_inCall)
        {
            return (held, []);
        }

        var (content, calls) = format.Parse(held);
        return calls.Count == 0 ? (held, calls) : (content ?? "", calls);
    }
}
