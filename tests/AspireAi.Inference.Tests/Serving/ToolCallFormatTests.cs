using AspireAi.Inference.Serving.Tools;

namespace AspireAi.Inference.Tests.Serving;

/// <summary>Tool calls parsed out of each family's output, whole and streamed.</summary>
public sealed class ToolCallFormatTests
{
    private static ToolCallFormat Hermes => ToolCallFormat.Detect("{% for tool in tools %}<tool_call>{% endfor %}");

    [Fact]
    public void Formats_are_detected_from_the_template()
    {
        Assert.Equal(ToolCallStyle.Hermes, Hermes.Style);
        Assert.Equal(ToolCallStyle.Mistral, ToolCallFormat.Detect("[AVAILABLE_TOOLS]{{ tools }}[/AVAILABLE_TOOLS][TOOL_CALLS]").Style);
        Assert.Equal(ToolCallStyle.Llama3Json, ToolCallFormat.Detect("<|start_header_id|>ipython<|end_header_id|> {\"name\": ..., \"parameters\": ...}").Style);
    }

    [Fact]
    public void Hermes_calls_and_content_are_separated()
    {
        var (content, calls) = Hermes.Parse("Let me check.\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Oslo\"}}\n</tool_call>\n<tool_call>{\"name\": \"get_time\", \"arguments\": {}}</tool_call>");
        Assert.Equal("Let me check.", content);
        Assert.Equal(["get_weather", "get_time"], calls.Select(c => c.Name));
        Assert.Equal("{\"city\": \"Oslo\"}", calls[0].ArgumentsJson);
        Assert.NotEqual(calls[0].Id, calls[1].Id);
    }

    [Fact]
    public void Llama3_and_mistral_calls_parse()
    {
        var llama = ToolCallFormat.Detect("<|python_tag|>");
        var (content, calls) = llama.Parse("<|python_tag|>{\"name\": \"search\", \"parameters\": {\"q\": \"cats\"}}");
        Assert.Null(content);
        Assert.Equal("search", Assert.Single(calls).Name);
        Assert.Equal("{\"q\": \"cats\"}", calls[0].ArgumentsJson);
        Assert.Empty(llama.Parse("Just text {not json").Calls);

        var mistral = ToolCallFormat.Detect("[TOOL_CALLS]");
        (content, calls) = mistral.Parse("[{\"name\": \"a\", \"arguments\": {\"x\": 1}}, {\"name\": \"b\", \"arguments\": {}}]");
        Assert.Null(content);
        Assert.Equal(["a", "b"], calls.Select(c => c.Name));
    }

    [Fact]
    public void Streaming_holds_back_only_what_may_be_a_call()
    {
        var parser = Hermes.Stream();
        var shown = "";
        foreach (var piece in new[] { "Hello", " <", "tool", "_call>{\"name\": \"f\", ", "\"arguments\": {}}</tool_call>" })
        {
            shown += parser.Push(piece);
        }

        var (rest, calls) = parser.Finish();
        Assert.Equal("Hello ", shown);
        Assert.Equal("", rest);
        Assert.Equal("f", Assert.Single(calls).Name);

        var plain = Hermes.Stream();
        Assert.Equal("a ", plain.Push("a <"));
        Assert.Equal("<b", plain.Push("b"));
        Assert.Empty(plain.Finish().Calls);
    }
}
