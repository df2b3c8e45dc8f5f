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

/// <summary>A piece of a streamed tool call (OpenAI's <c>delta.tool_calls[]</c> entry): the first piece of a call carries its
/// id and name, later pieces fragments of its arguments; the fragments of one call concatenated are its arguments.</summary>
public sealed record ToolCallDelta(int Index, string? Id, string? Name, string Arguments);

/// <summary>
/// Streams content deltas while holding back anything that may be a tool call: for Hermes from <c>&lt;tool_call&gt;</c> (and
/// any text that could be its beginning) on; for the JSON styles, the whole answer once it starts with <c>{</c> or <c>[</c>.
/// Calls stream as they are generated (vLLM's and OpenAI's way): a call's first delta once its name is complete, then its
/// arguments' JSON text as it comes (see <see cref="ToolCallScanner"/>); <see cref="Finish"/> parses the whole output and sends
/// whatever the stream could not (arguments written as a JSON string, or before the name).
/// </summary>
public sealed class StreamingToolCallParser(ToolCallFormat format)
{
    private const string HermesOpen = "<tool_call>";
    private readonly StringBuilder _held = new();
    private readonly ToolCallScanner _scanner = new();
    private readonly List<ToolCallDelta> _deltas = [];
    private bool _inCall;
    private bool _sawText;

    /// <summary>Adds generated text; returns the content that can be shown now (tool-call pieces: <see cref="TakeDeltas"/>).</summary>
    public string Push(string text)
    {
        if (_inCall)
        {
            _held.Append(text);
            _scanner.Push(text, _deltas);
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
                if (_inCall)
                {
                    _scanner.Push(held, _deltas);
                }

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
            _scanner.Push(held[open..], _deltas);
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

    /// <summary>The tool-call pieces produced since the last call, in order.</summary>
    public IReadOnlyList<ToolCallDelta> TakeDeltas()
    {
        var taken = _deltas.ToArray();
        _deltas.Clear();
        return taken;
    }

    /// <summary>
    /// Ends the output: the remaining content (text that turned out not to be a call) and the calls, whose ids are those
    /// streamed. The pieces the stream has not sent yet follow in <see cref="TakeDeltas"/>.
    /// </summary>
    public (string Content, List<ParsedToolCall> Calls) Finish()
    {
        var held = _held.ToString();
        _held.Clear();
        if (!_inCall)
        {
            return (held, []);
        }

        var (content, calls) = format.Parse(held);
        if (calls.Count == 0)
        {
            // Not a well-formed call after all (cut off by max_tokens, say): text, unless pieces of it already went out as a call.
            return (_scanner.Started.Count == 0 ? held : "", calls);
        }

        for (var i = 0; i < calls.Count; i++)
        {
            var call = calls[i];
            if (i >= _scanner.Started.Count)
            {
                _deltas.Add(new ToolCallDelta(i, call.Id, call.Name, call.ArgumentsJson));
                continue;
            }

            var started = _scanner.Started[i];
            var sent = started.Sent.ToString();
            calls[i] = call with { Id = started.Id };
            // What was streamed is the start of the arguments' JSON text; the rest (or all of it, for arguments the stream
            // could not follow) goes now.
            if (call.ArgumentsJson.StartsWith(sent, StringComparison.Ordinal) && call.ArgumentsJson.Length > sent.Length)
            {
                _deltas.Add(new ToolCallDelta(i, null, null, call.ArgumentsJson[sent.Length..]));
            }
        }

        return (content ?? "", calls);
    }
}

/// <summary>
/// Follows tool-call JSON as it is generated — Hermes blocks, a Llama 3 object, a Mistral array — and emits each call's
/// pieces: its id and name once the name string is complete, then the raw JSON text of its arguments object as generated
/// (one fragment per pushed piece of text), up to the object's closing brace. Every object that opens outside a call object
/// is a call. Written by hand because .NET's JSON readers (Utf8JsonReader included) report tokens, not the raw text of an
/// unfinished object, and the exact text is what the concatenated fragments must equal.
/// </summary>
internal sealed class ToolCallScanner
{
    private readonly StringBuilder _string = new();
    private readonly StringBuilder _fragment = new(); // arguments text of the current call not yet emitted
    private int _depth; // braces and brackets open, counted from the call object's own (0: outside any call)
    private bool _inString;
    private bool _escaped;
    private bool _expectKey;
    private bool _readingKey;
    private bool _readingName;
    private string? _key; // the call object's current key, once its string closed
    private bool _argumentsSeen;
    private int _argumentsDepth; // > 0 while inside the arguments object: the depth its opening brace made
    private int _calls; // call objects opened so far
    private Call? _current; // the current call once its name went out

    /// <summary>A call whose first delta went out: its id and the arguments text sent so far.</summary>
    public sealed record Call(string Id, StringBuilder Sent);

    public List<Call> Started { get; } = [];

    public void Push(string text, List<ToolCallDelta> deltas)
    {
        foreach (var c in text)
        {
            Step(c, deltas);
        }

        Flush(deltas);
    }

    private void Step(char c, List<ToolCallDelta> deltas)
    {
        if (_depth == 0)
        {
            if (c == '{')
            {
                // A new call object (its name comes later).
                _depth = 1;
                _calls++;
                _expectKey = true;
                _key = null;
                _argumentsSeen = false;
                _argumentsDepth = 0;
                _current = null;
                _fragment.Clear(); // arguments of a call whose name never came are not sent as this one's
            }

            return; // between calls: markers, whitespace, a list's punctuation
        }

        if (_argumentsDepth > 0)
        {
            _fragment.Append(c);
        }

        if (_inString)
        {
            if (_escaped)
            {
                _escaped = false;
            }
            else if (c == '\\')
            {
                _escaped = true;
            }
            else if (c == '"')
            {
                _inString = false;
                if (_readingKey)
                {
                    _readingKey = false;
                    _key = _string.ToString();
                }
                else if (_readingName)
                {
                    _readingName = false;
                    StartCall(Decode(_string.ToString()), deltas);
                }

                return;
            }

            if (_readingKey || _readingName)
            {
                _string.Append(c);
            }

            return;
        }

        if (char.IsWhiteSpace(c) || c == ':')
        {
            return;
        }

        if (_depth == 1 && _key is "arguments" or "parameters" && !_argumentsSeen && !_expectKey)
        {
            _argumentsSeen = true; // only an object is followed; anything else (a JSON string) is sent whole at the end
            if (c == '{')
            {
                _argumentsDepth = 2;
                _fragment.Append(c);
            }
        }

        switch (c)
        {
            case '"':
                _inString = true;
                _string.Clear();
                if (_depth == 1 && _expectKey)
                {
                    _readingKey = true;
                    _expectKey = false;
                }
                else if (_depth == 1 && _key == "name" && _current is null && Started.Count < _calls)
                {
                    _readingName = true;
                }

                break;
            case '{' or '[':
                _depth++;
                break;
            case '}' or ']':
                _depth--;
                if (_argumentsDepth > 0 && _depth < _argumentsDepth)
                {
                    _argumentsDepth = 0; // the arguments object closed with this character
                }

                if (_depth == 0)
                {
                    Flush(deltas);
                    _current = null;
                }

                break;
            case ',' when _depth == 1:
                _expectKey = true;
                _key = null;
                break;
        }
    }

    /// <summary>The call's first delta (id, name), then whatever of its arguments came before the name.</summary>
    private void StartCall(string name, List<ToolCallDelta> deltas)
    {
        _current = new Call(ParsedToolCall.NewId(), new StringBuilder());
        Started.Add(_current);
        deltas.Add(new ToolCallDelta(Started.Count - 1, _current.Id, name, ""));
        Flush(deltas);
    }

    private void Flush(List<ToolCallDelta> deltas)
    {
        if (_current is null || _fragment.Length == 0)
        {
            return;
        }

        var text = _fragment.ToString();
        _fragment.Clear();
        _current.Sent.Append(text);
        deltas.Add(new ToolCallDelta(Started.Count - 1, null, null, text));
    }

    private static string Decode(string raw)
    {
        try
        {
            return JsonSerializer.Deserialize<string>("\"" + raw + "\"") ?? raw;
        }
        catch (JsonException)
        {
            return raw;
        }
    }
}
