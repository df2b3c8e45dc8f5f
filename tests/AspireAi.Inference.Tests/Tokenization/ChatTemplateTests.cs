using System.Text.Json;
using AspireAi.Inference.Models.Gguf;
using AspireAi.Inference.Tests.Support;
using AspireAi.Inference.Tokenization;
using AspireAi.Inference.Tokenization.Jinja;

namespace AspireAi.Inference.Tests.Tokenization;

public sealed class ChatTemplateTests
{
    private static readonly DateTime Today = new(2024, 7, 26);

    // llama.cpp's test-chat-template conversation.
    private static readonly ChatMessage[] Conversation =
    [
        new("system", "You are a helpful assistant"),
        new("user", "Hello"),
        new("assistant", "Hi there"),
        new("user", "Who are you"),
        new("assistant", "   I am an assistant   "),
        new("user", "Another question"),
    ];

    private static ChatTemplate Real(string name, string bos = "", string eos = "") =>
        new(File.ReadAllText(TestPaths.TestData("templates", name + ".jinja")), bos, eos);

    public static TheoryData<string, string, string, string> LlamaCppCases => new()
    {
        // name, template, bos, expected (from llama.cpp's tests/test-chat-template.cpp)
        {
            "OpenHermes (ChatML)",
            "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}",
            "",
            "<|im_start|>system\nYou are a helpful assistant<|im_end|>\n<|im_start|>user\nHello<|im_end|>\n<|im_start|>assistant\nHi there<|im_end|>\n<|im_start|>user\nWho are you<|im_end|>\n<|im_start|>assistant\n   I am an assistant   <|im_end|>\n<|im_start|>user\nAnother question<|im_end|>\n<|im_start|>assistant\n"
        },
        {
            "phi-4",
            "{% for message in messages %}{% if (message['role'] == 'system') %}{{'<|im_start|>system<|im_sep|>' + message['content'] + '<|im_end|>'}}{% elif (message['role'] == 'user') %}{{'<|im_start|>user<|im_sep|>' + message['content'] + '<|im_end|><|im_start|>assistant<|im_sep|>'}}{% elif (message['role'] == 'assistant') %}{{message['content'] + '<|im_end|>'}}{% endif %}{% endfor %}",
            "",
            "<|im_start|>system<|im_sep|>You are a helpful assistant<|im_end|><|im_start|>user<|im_sep|>Hello<|im_end|><|im_start|>assistant<|im_sep|>Hi there<|im_end|><|im_start|>user<|im_sep|>Who are you<|im_end|><|im_start|>assistant<|im_sep|>   I am an assistant   <|im_end|><|im_start|>user<|im_sep|>Another question<|im_end|><|im_start|>assistant<|im_sep|>"
        },
        {
            "inclusionAI/Ling-lite",
            "{% for message in messages %}{% set role = message['role'] | lower %}{% if role == 'user' %}{% set role = 'HUMAN' %}{% endif %}{% set role = role | upper %}{{ '<role>' + role + '</role>' + message['content'] }}{% endfor %}{% if add_generation_prompt %}{{ '<role>ASSISTANT</role>' }}{% endif %}",
            "",
            "<role>SYSTEM</role>You are a helpful assistant<role>HUMAN</role>Hello<role>ASSISTANT</role>Hi there<role>HUMAN</role>Who are you<role>ASSISTANT</role>   I am an assistant   <role>HUMAN</role>Another question<role>ASSISTANT</role>"
        },
        {
            "ByteDance-Seed/Seed-OSS-36B-Instruct",
            "{# <seed:bos> #}{%- for message in messages %}{%- if message.role in [\"user\", \"system\"] %}{{ bos_token + message.role + \"\\n\" + message.content + eos_token }}{%- elif message.role == \"assistant\" %}{{ bos_token + message.role }}{%- if message.content is defined and message.content is string and message.content|trim|length > 0 %}{{ \"\\n\" + message.content|trim + eos_token }}{%- endif %}{%- else %}{{ bos_token + message.role + \"\\n\" + message.content + eos_token }}{%- endif %}{%- endfor %}{%- if add_generation_prompt %}{{ bos_token + \"assistant\\n\" }}{%- endif %}",
            "<seed:bos>",
            "<seed:bos>system\nYou are a helpful assistant<seed:eos><seed:bos>user\nHello<seed:eos><seed:bos>assistant\nHi there<seed:eos><seed:bos>user\nWho are you<seed:eos><seed:bos>assistant\nI am an assistant<seed:eos><seed:bos>user\nAnother question<seed:eos><seed:bos>assistant\n"
        },
        {
            "deepseek-coder",
            "{% if not add_generation_prompt is defined %}\n{% set add_generation_prompt = false %}\n{% endif %}\n{%- set ns = namespace(found=false) -%}\n{%- for message in messages -%}\n    {%- if message['role'] == 'system' -%}\n        {%- set ns.found = true -%}\n    {%- endif -%}\n{%- endfor -%}\n{{bos_token}}{%- if not ns.found -%}\n{{'You are an AI programming assistant, utilizing the Deepseek Coder model, developed by Deepseek Company, and you only answer questions related to computer science. For politically sensitive questions, security and privacy issues, and other non-computer science questions, you will refuse to answer\\n'}}\n{%- endif %}\n{%- for message in messages %}\n    {%- if message['role'] == 'system' %}\n{{ message['content'] }}\n    {%- else %}\n        {%- if message['role'] == 'user' %}\n{{'### Instruction:\\n' + message['content'] + '\\n'}}\n        {%- else %}\n{{'### Response:\\n' + message['content'] + '\\n<|EOT|>\\n'}}\n        {%- endif %}\n    {%- endif %}\n{%- endfor %}\n{% if add_generation_prompt %}\n{{'### Response:'}}\n{% endif %}",
            "",
            "You are a helpful assistant### Instruction:\nHello\n### Response:\nHi there\n<|EOT|>\n### Instruction:\nWho are you\n### Response:\n   I am an assistant   \n<|EOT|>\n### Instruction:\nAnother question\n### Response:\n"
        },
    };

    [Theory]
    [MemberData(nameof(LlamaCppCases))]
    public void Llama_cpp_test_cases_render_as_expected(string name, string template, string bos, string expected)
    {
        var eos = bos == "<seed:bos>" ? "<seed:eos>" : "</s>";
        Assert.Equal(expected, new ChatTemplate(template, bos, eos).Render(Conversation));
        Assert.False(string.IsNullOrEmpty(name));
    }

    [Fact]
    public void Llama_3_2_puts_the_date_and_system_prompt_in_the_system_header()
    {
        var template = Real("meta-llama-Llama-3.2-3B-Instruct", "<|begin_of_text|>", "<|eot_id|>");
        var prompt = template.Render([new("system", "  You are a helpful assistant "), new("user", "Hello")], now: () => Today);
        Assert.Equal(
            "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n" +
            "You are a helpful assistant<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHello<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n",
            prompt);
        Assert.True(template.StartsWithBos(prompt));
    }

    [Fact]
    public void Llama_3_1_puts_tools_in_the_first_user_message_and_renders_tool_calls_and_results()
    {
        var template = Real("meta-llama-Llama-3.1-8B-Instruct", "<|begin_of_text|>", "<|eot_id|>");
        using var tool = JsonDocument.Parse("""{"type":"function","function":{"name":"get_weather","parameters":{"type":"object"}}}""");
        var prompt = template.Render(
        [
            new("user", "Weather in Paris?"),
            new("assistant", null) { ToolCalls = [new ChatToolCall("c1", "get_weather", """{"city":"Paris"}""")] },
            new("tool", "22C") { ToolCallId = "c1" },
        ], tools: [tool.RootElement], now: () => Today);

        Assert.StartsWith("<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nEnvironment: ipython\nCutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n<|eot_id|>", prompt);
        Assert.Contains("<|start_header_id|>user<|end_header_id|>\n\nGiven the following functions, please respond with a JSON for a function call with its proper arguments that best answers the given prompt.\n\n", prompt);
        // tojson(indent=4) of the tool, then the first user message.
        Assert.Contains("{\n    \"type\": \"function\",\n    \"function\": {\n        \"name\": \"get_weather\",\n        \"parameters\": {\n            \"type\": \"object\"\n        }\n    }\n}\n\nWeather in Paris?<|eot_id|>", prompt);
        Assert.EndsWith(
            "<|start_header_id|>assistant<|end_header_id|>\n\n{\"name\": \"get_weather\", \"parameters\": {\"city\": \"Paris\"}}<|eot_id|>" +
            "<|start_header_id|>ipython<|end_header_id|>\n\n\"22C\"<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n",
            prompt);
    }

    [Fact]
    public void Qwen2_5_adds_its_default_system_prompt_tools_and_tool_responses()
    {
        var template = Real("Qwen-Qwen2.5-7B-Instruct", "", "<|im_end|>");
        Assert.Equal(
            "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n<|im_start|>user\nHello<|im_end|>\n<|im_start|>assistant\n",
            template.Render([new("user", "Hello")]));

        using var tool = JsonDocument.Parse("""{"type":"function","function":{"name":"get_weather","parameters":{"type":"object"}}}""");
        var prompt = template.Render(
        [
            new("user", "What's the weather in Paris?"),
            new("assistant", null) { ToolCalls = [new ChatToolCall("c1", "get_weather", """{"city":"Paris"}""")] },
            new("tool", "22C"),
        ], tools: [tool.RootElement]);
        Assert.Equal(
            "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.\n\n# Tools\n\nYou may call one or more functions to assist with the user query.\n\n" +
            "You are provided with function signatures within <tools></tools> XML tags:\n<tools>\n{\"type\": \"function\", \"function\": {\"name\": \"get_weather\", \"parameters\": {\"type\": \"object\"}}}\n</tools>\n\n" +
            "For each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n{\"name\": <function-name>, \"arguments\": <args-json-object>}\n</tool_call><|im_end|>\n" +
            "<|im_start|>user\nWhat's the weather in Paris?<|im_end|>\n<|im_start|>assistant\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call><|im_end|>\n" +
            "<|im_start|>user\n<tool_response>\n22C\n</tool_response><|im_end|>\n<|im_start|>assistant\n",
            prompt);
    }

    [Fact]
    public void Qwen3_renders_history_without_thinking_blocks()
    {
        var template = Real("Qwen-Qwen3-0.6B", "", "<|im_end|>");
        var prompt = template.Render([new("system", "Be brief."), new("user", "Hi"), new("assistant", "<think>\nhm\n</think>\n\nHello!"), new("user", "Bye")]);
        Assert.Equal(
            "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello!<|im_end|>\n<|im_start|>user\nBye<|im_end|>\n<|im_start|>assistant\n",
            prompt);
    }

    [Fact]
    public void Phi_3_5_gemma_2_and_deepseek_r1()
    {
        Assert.Equal("<|system|>\nYou are a helpful assistant<|end|>\n<|user|>\nHello<|end|>\n<|assistant|>\n",
            Real("microsoft-Phi-3.5-mini-instruct", "<s>", "<|endoftext|>").Render(Conversation[..2]));

        var gemma = Real("google-gemma-2-2b-it", "<bos>", "<eos>");
        Assert.Equal("<bos><start_of_turn>user\nHello<end_of_turn>\n<start_of_turn>model\nHi there<end_of_turn>\n<start_of_turn>user\nWho are you<end_of_turn>\n<start_of_turn>model\n",
            gemma.Render(Conversation[1..4]));
        Assert.Contains("System role not supported", Assert.Throws<JinjaException>(() => gemma.Render(Conversation)).Message);
        Assert.Contains("Conversation roles must alternate", Assert.Throws<JinjaException>(() => gemma.Render([new("user", "a"), new("user", "b")])).Message);

        var r1 = Real("deepseek-ai-DeepSeek-R1-Distill-Qwen-32B", "<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>");
        Assert.Equal("<｜begin▁of▁sentence｜>S<｜User｜>Hello<｜Assistant｜>Hi there<｜end▁of▁sentence｜><｜User｜>Who<｜Assistant｜><think>\n</think>",
            r1.Render([new("system", "S"), new("user", "Hello"), new("assistant", "<think>x</think>Hi there"), new("user", "Who")]));
    }

    [Fact]
    public void Every_copied_template_parses_and_renders_a_plain_conversation()
    {
        foreach (var path in Directory.GetFiles(TestPaths.TestData("templates"), "*.jinja"))
        {
            var template = new ChatTemplate(File.ReadAllText(path), "<s>", "</s>");
            var prompt = template.Render([new("user", "Hello"), new("assistant", "Hi there"), new("user", "Who are you")], now: () => Today);
            Assert.Contains("Who are you", prompt);
        }
    }

    [Fact]
    public void Gguf_template_uses_the_vocabulary_bos_and_eos()
    {
        using var temp = new TempDirectory();
        var path = new TinyGgufModel().CreateWriter()
            .Add("tokenizer.chat_template", "{{ bos_token }}{% for m in messages %}{{ m.content }}{{ eos_token }}{% endfor %}")
            .WriteTo(temp.File("chat.gguf"));
        using var file = GgufFile.Open(path);
        var template = ChatTemplate.FromGguf(file, Tokenizers.FromGguf(file))!;
        Assert.Equal("<s>hi</s>", template.Render([new("user", "hi")]));
    }
}
