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

/// <summary>Tool-call arguments stream as they are generated: pieces of text in, OpenAI-style deltas out.</summary>
public sealed class StreamingToolCallDeltaTests
{
    /// <summary>Pushes <paramref name="output"/> in pieces of <paramref name="piece"/> characters (as tokens arrive) and finishes.</summary>
    private static (string Content, List<ToolCallDelta> Deltas, List<ParsedToolCall> Calls, int DeltasBeforeFinish) Stream(
        ToolCallFormat format, string output, int piece)
    {
        var parser = format.Stream();
        var content = "";
        var deltas = new List<ToolCallDelta>();
        for (var i = 0; i < output.Length; i += piece)
        {
            content += parser.Push(output.Substring(i, Math.Min(piece, output.Length - i)));
            deltas.AddRange(parser.TakeDeltas());
        }

        var before = deltas.Count;
        var (rest, calls) = parser.Finish();
        deltas.AddRange(parser.TakeDeltas());
        return (content + rest, deltas, calls, before);
    }

    private static void AssertCallsStreamed(List<ToolCallDelta> deltas, List<ParsedToolCall> calls, bool inOrder = true)
    {
        for (var i = 0; i < calls.Count; i++)
        {
            var mine = deltas.Where(d => d.Index == i).ToList();
            Assert.Equal(calls[i].Id, mine[0].Id);
            Assert.Equal(calls[i].Name, mine[0].Name);
            Assert.All(mine.Skip(1), d => Assert.Null(d.Name));
            Assert.Equal(calls[i].ArgumentsJson, string.Concat(mine.Select(d => d.Arguments)));
        }

        if (inOrder)
        {
            // A call's pieces come before the next call's.
            Assert.Equal(deltas.Select(d => d.Index).Order(), deltas.Select(d => d.Index));
        }
    }

    [Theory]
    [InlineData(1)]
    [InlineData(3)]
    [InlineData(7)]
    public void Hermes_arguments_stream_in_pieces_that_add_up_to_the_arguments(int piece)
    {
        var hermes = ToolCallFormat.Detect("<tool_call>");
        var output = "Checking.\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Oslo \\\"N\\\" {x}\", \"days\": [1, 2]}}\n</tool_call>\n"
            + "<tool_call>{\"name\": \"get_time\", \"arguments\": {}}</tool_call>";
        var (content, deltas, calls, beforeFinish) = Stream(hermes, output, piece);

        Assert.Equal("Checking.\n", content);
        Assert.Equal(["get_weather", "get_time"], calls.Select(c => c.Name));
        AssertCallsStreamed(deltas, calls);
        Assert.Equal(deltas.Count, beforeFinish); // everything went out while generating; nothing was left for the end
        Assert.True(deltas.Count(d => d.Index == 0 && d.Name is null) > 1, "the first call's arguments come in several pieces");
    }

    [Fact]
    public void Mistral_lists_and_llama3_parameters_stream_too()
    {
        var mistral = Stream(ToolCallFormat.Detect("[TOOL_CALLS]"), "[{\"name\": \"a\", \"arguments\": {\"x\": 1}}, {\"name\": \"b\", \"arguments\": {\"y\": \"z\"}}]", 2);
        Assert.Equal(["a", "b"], mistral.Calls.Select(c => c.Name));
        AssertCallsStreamed(mistral.Deltas, mistral.Calls);
        Assert.Equal(mistral.Deltas.Count, mistral.DeltasBeforeFinish);

        var llama = Stream(ToolCallFormat.Detect("<|python_tag|>"), "<|python_tag|>{\"name\": \"search\", \"parameters\": {\"q\": \"cats\"}}", 4);
        Assert.Equal("search", Assert.Single(llama.Calls).Name);
        AssertCallsStreamed(llama.Deltas, llama.Calls);
    }

    [Fact]
    public void Arguments_the_stream_cannot_follow_are_sent_whole_at_the_end()
    {
        var hermes = ToolCallFormat.Detect("<tool_call>");
        // Arguments written as a JSON string (some models do), and arguments written before the name.
        var (_, deltas, calls, beforeFinish) = Stream(hermes,
            "<tool_call>{\"name\": \"f\", \"arguments\": \"{\\\"a\\\": 1}\"}</tool_call><tool_call>{\"arguments\": {\"b\": 2}, \"name\": \"g\"}</tool_call>", 3);

        Assert.Equal(["f", "g"], calls.Select(c => c.Name));
        Assert.Equal("{\"a\": 1}", calls[0].ArgumentsJson);
        // The first call's arguments come at the end, after the second call's pieces (clients join pieces by index).
        AssertCallsStreamed(deltas, calls, inOrder: false);
        Assert.True(beforeFinish < deltas.Count);
    }

    [Fact]
    public void A_call_cut_off_before_its_end_is_not_turned_into_content()
    {
        var (content, deltas, calls, _) = Stream(ToolCallFormat.Detect("<tool_call>"), "<tool_call>{\"name\": \"f\", \"arguments\": {\"a\": [1, 2", 2);
        Assert.Empty(calls);
        Assert.Equal("", content);
        Assert.Equal("f", deltas[0].Name);
        Assert.Equal("{\"a\": [1, 2", string.Concat(deltas.Skip(1).Select(d => d.Arguments)));
    }
}
