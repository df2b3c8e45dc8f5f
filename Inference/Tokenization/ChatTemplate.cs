using System.Text.Json;
using AspireAi.Inference.Models;
using AspireAi.Inference.Models.Gguf;
using AspireAi.Inference.Models.SafeTensors;
using AspireAi.Inference.Tokenization.Jinja;

namespace AspireAi.Inference.Tokenization;

/// <summary>One chat message as templates see it (OpenAI roles: system, user, assistant, tool).</summary>
public sealed record ChatMessage(string Role, string? Content)
{
    /// <summary>Assistant tool calls (rendered as <c>tool_calls: [{id, type: "function", function: {name, arguments}}]</c>).</summary>
    public IReadOnlyList<ChatToolCall>? ToolCalls { get; init; }

    /// <summary>For a tool result: the id of the call it answers.</summary>
    public string? ToolCallId { get; init; }

    /// <summary>For a tool result: the tool's name (some templates print it).</summary>
    public string? Name { get; init; }
}

/// <summary>A tool call; <paramref name="ArgumentsJson"/> is a JSON object, handed to templates parsed (as transformers does).</summary>
public sealed record ChatToolCall(string Id, string Name, string ArgumentsJson);

/// <summary>
/// The model's own chat template (Jinja2), rendered as transformers' <c>apply_chat_template</c> does: variables
/// <c>messages</c>, <c>tools</c>, <c>add_generation_prompt</c>, <c>bos_token</c>, <c>eos_token</c>, plus
/// <c>raise_exception</c> and <c>strftime_now</c>. Thread-safe: parsed once, rendered per request.
/// </summary>
public sealed class ChatTemplate
{
    private readonly JinjaTemplate _template;

    /// <exception cref="JinjaException">The template does not parse (message has the line).</exception>
    public ChatTemplate(string source, string bosToken = "", string eosToken = "")
    {
        Source = source;
        BosToken = bosToken;
        EosToken = eosToken;
        _template = JinjaTemplate.Parse(source);
    }

    public string Source { get; }

    public string BosToken { get; }

    public string EosToken { get; }

    /// <summary>The template in a GGUF file's <c>tokenizer.chat_template</c>, with BOS/EOS texts from its vocabulary; null when absent.</summary>
    public static ChatTemplate? FromGguf(GgufFile file, ITokenizer tokenizer) =>
        file.TryGetString("tokenizer.chat_template", out var source)
            ? new ChatTemplate(source, TokenText(tokenizer, tokenizer.BosId), TokenText(tokenizer, tokenizer.EosId))
            : null;

    /// <summary>The template of a Hugging Face folder (<c>chat_template.jinja</c>, else <c>tokenizer_config.json</c>'s
    /// <c>chat_template</c>); null when it has none.</summary>
    public static ChatTemplate? FromHuggingFace(string folder, ITokenizer tokenizer)
    {
        var config = HuggingFaceTokenizerLoader.ReadConfig(folder);
        return config.ChatTemplate is null ? null
            : new ChatTemplate(config.ChatTemplate, config.Bos ?? TokenText(tokenizer, tokenizer.BosId), config.Eos ?? TokenText(tokenizer, tokenizer.EosId));
    }

    /// <summary>The template of whichever kind of model <paramref name="source"/> is (<see cref="FromGguf"/> or <see cref="FromHuggingFace"/>;
    /// a random model has none).</summary>
    public static ChatTemplate? For(IModelSource source, ITokenizer tokenizer) => source switch
    {
        GgufFile file => FromGguf(file, tokenizer),
        SafeTensorsModel folder => FromHuggingFace(folder.Path, tokenizer),
        Models.Synthetic.RandomModel => null,
        _ => throw new ArgumentException($"No chat template reader for {source.GetType().Name}.", nameof(source)),
    };

    /// <summary>Renders the conversation into the prompt text (to be tokenized with special-token parsing and without adding BOS
    /// again when the template already wrote it).</summary>
    /// <param name="tools">Tool definitions as JSON objects (OpenAI's <c>{"type":"function","function":{...}}</c>).</param>
    /// <param name="extraVariables">More template variables (<c>enable_thinking</c>, <c>date_string</c>…).</param>
    /// <exception cref="JinjaException">The template raised an exception (e.g. roles that do not alternate) or failed.</exception>
    public string Render(IReadOnlyList<ChatMessage> messages, bool addGenerationPrompt = true, IReadOnlyList<JsonElement>? tools = null,
        IReadOnlyDictionary<string, object?>? extraVariables = null, Func<DateTime>? now = null)
    {
        var variables = new Dictionary<string, object?>(StringComparer.Ordinal)
        {
            ["messages"] = messages.Select(ToDictionary).ToList<object?>(),
            ["add_generation_prompt"] = addGenerationPrompt,
            ["bos_token"] = BosToken,
            ["eos_token"] = EosToken,
        };
        if (tools is { Count: > 0 })
        {
            variables["tools"] = tools.Select(t => JinjaValues.FromJson(t)).ToList();
        }

        foreach (var (key, value) in extraVariables ?? new Dictionary<string, object?>())
        {
            variables[key] = value;
        }

        return _template.Render(variables, now);
    }

    /// <summary>Whether the prompt starts with BOS already, so tokenizing it must not add a second one.</summary>
    public bool StartsWithBos(string prompt) => BosToken.Length > 0 && prompt.StartsWith(BosToken, StringComparison.Ordinal);

    private static Dictionary<string, object?> ToDictionary(ChatMessage m)
    {
        var d = new Dictionary<string, object?>(StringComparer.Ordinal) { ["role"] = m.Role, ["content"] = m.Content };
        if (m.ToolCalls is { Count: > 0 } calls)
        {
            d["tool_calls"] = calls.Select(c => (object?)new Dictionary<string, object?>(StringComparer.Ordinal)
            {
                ["id"] = c.Id,
                ["type"] = "function",
                ["function"] = new Dictionary<string, object?>(StringComparer.Ordinal)
                {
                    ["name"] = c.Name,
                    ["arguments"] = ParseArguments(c.ArgumentsJson),
                },
            }).ToList();
        }

        if (m.ToolCallId is not null)
        {
            d["tool_call_id"] = m.ToolCallId;
        }

        if (m.Name is not null)
        {
            d["name"] = m.Name;
        }

        return d;
    }

    private static object? ParseArguments(string json)
    {
        try
        {
            using var document = JsonDocument.Parse(json);
            return JinjaValues.FromJson(document.RootElement);
        }
        catch (JsonException)
        {
            // Not JSON: templates get the raw string, as they would from a client that sent one.
            return json;
        }
    }

    private static string TokenText(ITokenizer tokenizer, int id) => id >= 0 ? tokenizer.TokenToPiece(id) : "";
}
