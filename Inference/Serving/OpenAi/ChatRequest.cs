using System.Text.Json;
using AspireAi.Inference.Engine;
using AspireAi.Inference.Serving.StructuredOutput;
using AspireAi.Inference.Tokenization;

namespace AspireAi.Inference.Serving.OpenAi;

public enum ToolChoice
{
    None,
    Auto,
    Required,
    /// <summary>One named function must be called.</summary>
    Function,
}

/// <summary>A chat completion request, read and validated.</summary>
internal sealed record ChatRequest(
    GenerationSettings Settings,
    List<ChatMessage> Messages,
    List<JsonElement> Tools,
    ToolChoice ToolChoice,
    string? ToolName)
{
    public static ChatRequest Read(RequestReader r)
    {
        var settings = GenerationSettings.Read(r, chat: true);
        settings = settings with { PromptLogprobs = r.Int("prompt_logprobs", 0, 20) }; // vLLM's extension
        var messages = ReadMessages(r);
        var tools = new List<JsonElement>();
        if (r.Element("tools") is { } toolArray)
        {
            if (toolArray.ValueKind != JsonValueKind.Array)
            {
                r.Fail("tools", "must be an array");
            }
            else
            {
                var i = 0;
                foreach (var tool in toolArray.EnumerateArray())
                {
                    if (tool.ValueKind != JsonValueKind.Object || !tool.TryGetProperty("type", out var type) || type.GetString() != "function"
                        || !tool.TryGetProperty("function", out var function) || function.ValueKind != JsonValueKind.Object
                        || !function.TryGetProperty("name", out var name) || name.ValueKind != JsonValueKind.String || name.GetString() is not { Length: > 0 })
                    {
                        r.Fail($"tools[{i}]", "must be {\"type\": \"function\", \"function\": {\"name\": …, \"parameters\": {…}}}");
                    }
                    else if (function.TryGetProperty("parameters", out var parameters) && parameters.ValueKind != JsonValueKind.Object)
                    {
                        r.Fail($"tools[{i}].function.parameters", "must be a JSON Schema object");
                    }
                    else
                    {
                        tools.Add(tool.Clone());
                    }

                    i++;
                }
            }
        }

        var choice = tools.Count > 0 ? ToolChoice.Auto : ToolChoice.None;
        string? toolName = null;
        if (r.Element("tool_choice") is { } tc)
        {
            if (tc.ValueKind == JsonValueKind.String)
            {
                choice = tc.GetString() switch
                {
                    "none" => ToolChoice.None,
                    "auto" => ToolChoice.Auto,
                    "required" => ToolChoice.Required,
                    var other => Invalid(r, $"must be none, auto, required or a function, not '{other}'"),
                };
            }
            else if (tc.ValueKind == JsonValueKind.Object && tc.TryGetProperty("function", out var f) && f.TryGetProperty("name", out var n) && n.ValueKind == JsonValueKind.String)
            {
                choice = ToolChoice.Function;
                toolName = n.GetString();
                if (!tools.Any(t => t.GetProperty("function").GetProperty("name").GetString() == toolName))
                {
                    r.Fail("tool_choice.function.name", $"'{toolName}' is not one of the tools");
                }
            }
            else
            {
                r.Fail("tool_choice", "must be a string or {\"type\": \"function\", \"function\": {\"name\": …}}");
            }

            if (choice is ToolChoice.Required or ToolChoice.Function && tools.Count == 0)
            {
                r.Fail("tool_choice", "needs tools");
            }
        }

        if (choice is ToolChoice.Required or ToolChoice.Function && settings.Json)
        {
            r.Fail("response_format", "cannot be combined with a forced tool call (tool_choice)");
        }

        return new ChatRequest(settings, messages, tools, choice, toolName);
    }

    private static ToolChoice Invalid(RequestReader r, string problem)
    {
        r.Fail("tool_choice", problem);
        return ToolChoice.None;
    }

    private static List<ChatMessage> ReadMessages(RequestReader r)
    {
        var messages = new List<ChatMessage>();
        if (r.Element("messages") is not { ValueKind: JsonValueKind.Array } array || array.GetArrayLength() == 0)
        {
            r.Fail("messages", "is required: a non-empty array of messages");
            return messages;
        }

        var i = 0;
        foreach (var m in array.EnumerateArray())
        {
            var at = $"messages[{i++}]";
            if (m.ValueKind != JsonValueKind.Object || !m.TryGetProperty("role", out var roleElement) || roleElement.ValueKind != JsonValueKind.String)
            {
                r.Fail(at, "must be an object with a string 'role'");
                continue;
            }

            var role = roleElement.GetString()!;
            if (role == "developer")
            {
                role = "system"; // OpenAI's newer name for the system role
            }

            if (role is not ("system" or "user" or "assistant" or "tool"))
            {
                r.Fail($"{at}.role", $"must be system, developer, user, assistant or tool, not '{role}'");
                continue;
            }

            string? content = null;
            if (m.TryGetProperty("content", out var c))
            {
                switch (c.ValueKind)
                {
                    case JsonValueKind.String:
                        content = c.GetString();
                        break;
                    case JsonValueKind.Array:
                        var parts = new List<string>();
                        foreach (var part in c.EnumerateArray())
                        {
                            if (part.TryGetProperty("type", out var type) && type.GetString() == "text" && part.TryGetProperty("text", out var text) && text.ValueKind == JsonValueKind.String)
                            {
                                parts.Add(text.GetString()!);
                            }
                            else
                            {
                                r.Fail($"{at}.content", "parts must be {\"type\": \"text\", \"text\": …} (this model reads text only)");
                            }
                        }

                        content = string.Concat(parts);
                        break;
                    case JsonValueKind.Null:
                        break;
                    default:
                        r.Fail($"{at}.content", "must be a string, an array of text parts or null");
                        break;
                }
            }

            List<ChatToolCall>? calls = null;
            if (role == "assistant" && m.TryGetProperty("tool_calls", out var toolCalls) && toolCalls.ValueKind == JsonValueKind.Array)
            {
                calls = [];
                foreach (var call in toolCalls.EnumerateArray())
                {
                    if (call.TryGetProperty("function", out var f) && f.TryGetProperty("name", out var name) && name.ValueKind == JsonValueKind.String)
                    {
                        var arguments = f.TryGetProperty("arguments", out var a) ? a.ValueKind == JsonValueKind.String ? a.GetString()! : a.GetRawText() : "{}";
                        calls.Add(new ChatToolCall(call.TryGetProperty("id", out var id) ? id.GetString() ?? "" : "", name.GetString()!, arguments));
                    }
                    else
                    {
                        r.Fail($"{at}.tool_calls", "each call needs function.name");
                    }
                }
            }

            if (content is null && role != "assistant")
            {
                r.Fail($"{at}.content", "is required");
            }

            messages.Add(new ChatMessage(role, content)
            {
                ToolCalls = calls,
                ToolCallId = m.TryGetProperty("tool_call_id", out var tcid) ? tcid.GetString() : null,
                Name = m.TryGetProperty("name", out var nm) ? nm.GetString() : null,
            });
        }

        return messages;
    }

    /// <summary>The prompt's tokens, through the model's template (tools rendered unless tool_choice is none).</summary>
    public int[] Prompt(ServedModel model)
    {
        var text = model.Template.Render(Messages, addGenerationPrompt: true, tools: ToolChoice == ToolChoice.None ? null : Tools);
        return model.Tokenizer.Encode(text, addSpecial: !model.Template.StartsWithBos(text), parseSpecial: true);
    }

    /// <summary>Whether the output is parsed for tool calls.</summary>
    public bool ParsesTools => Tools.Count > 0 && ToolChoice != ToolChoice.None;

    /// <summary>The constraint per choice: JSON for response_format, a call in the model's format for a forced tool call.</summary>
    public Func<ITokenConstraint>? Constraint(ServedModel model)
    {
        if (ToolChoice is ToolChoice.Required or ToolChoice.Function)
        {
            var tools = ToolChoice == ToolChoice.Function
                ? Tools.Where(t => t.GetProperty("function").GetProperty("name").GetString() == ToolName).ToList()
                : Tools;
            var schema = model.ToolFormat.CallSchema(tools);
            var (prefix, suffix) = model.ToolFormat.Wrapping;
            _ = GrammarConstraint.ForWrappedJson(model.TokenTrie, model.TokenBytes, prefix, schema, suffix); // surfaces schema errors now
            return () => GrammarConstraint.ForWrappedJson(model.TokenTrie, model.TokenBytes, prefix, schema, suffix);
        }

        if (Settings.Json)
        {
            var schema = Settings.ResponseSchema;
            _ = GrammarConstraint.ForJson(model.TokenTrie, model.TokenBytes, schema);
            return () => GrammarConstraint.ForJson(model.TokenTrie, model.TokenBytes, schema);
        }

        return null;
    }
}
