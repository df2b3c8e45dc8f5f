namespace AspireAi.Inference.Serving;

/// <summary>
/// The chat template of a model that has none (a base model such as stories15M): plain "Role: text" lines ending with
/// "Assistant:", so a completion model continues as the assistant. Tools are listed before the conversation with the
/// Hermes convention (<c>&lt;tool_call&gt;{"name": …, "arguments": {…}}&lt;/tool_call&gt;</c>), which is also how calls are parsed.
/// </summary>
public static class FallbackChatTemplate
{
    public const string Description = "\"System: …\\nUser: …\\nAssistant: …\\n\" lines, ending in \"Assistant:\"; tools listed first, calls as <tool_call>{json}</tool_call>";

    public const string Source =
        "{%- if tools -%}" +
        "System: You may call these tools. To call one, answer with <tool_call>{\"name\": <tool name>, \"arguments\": <JSON object>}</tool_call>.{{ '\\n' }}" +
        "{%- for tool in tools -%}Tool {{ tool.function.name }}: {{ tool.function.description }} Arguments: {{ tool.function.parameters | tojson }}{{ '\\n' }}{%- endfor -%}" +
        "{%- endif -%}" +
        "{%- for message in messages -%}" +
        "{%- if message.role == 'system' -%}System: {{ message.content }}{{ '\\n' }}" +
        "{%- elif message.role == 'user' -%}User: {{ message.content }}{{ '\\n' }}" +
        "{%- elif message.role == 'assistant' -%}Assistant:{% if message.content %} {{ message.content }}{% endif %}" +
        "{%- if message.tool_calls -%}{%- for call in message.tool_calls -%}<tool_call>{\"name\": {{ call.function.name | tojson }}, \"arguments\": {{ call.function.arguments | tojson }}}</tool_call>{%- endfor -%}{%- endif -%}{{ '\\n' }}" +
        "{%- elif message.role == 'tool' -%}Tool result: {{ message.content }}{{ '\\n' }}" +
        "{%- endif -%}" +
        "{%- endfor -%}" +
        "{%- if add_generation_prompt -%}Assistant:{%- endif -%}";
}
