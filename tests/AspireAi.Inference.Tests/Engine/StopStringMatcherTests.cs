using AspireAi.Inference.Engine;

namespace AspireAi.Inference.Tests.Engine;

public sealed class StopStringMatcherTests
{
    [Fact]
    public void A_stop_string_split_across_tokens_is_never_emitted()
    {
        var m = new StopStringMatcher(["\n\nUser:"]);
        var emitted = m.Push("Hello") + m.Push(" there\n") + m.Push("\nUs");
        Assert.Equal("Hello there", emitted);
        Assert.False(m.Stopped);
        Assert.Equal("", m.Push("er: hi"));
        Assert.True(m.Stopped);
    }

    [Fact]
    public void Held_back_text_is_released_when_it_stops_matching_or_at_the_end()
    {
        var m = new StopStringMatcher(["END"]);
        Assert.Equal("a", m.Push("aE"));
        Assert.Equal("Ex", m.Push("x"));
        Assert.Equal("", m.Push("EN"));
        Assert.Equal("EN", m.Flush());
    }

    [Fact]
    public void The_earliest_of_several_stop_strings_wins()
    {
        var m = new StopStringMatcher(["cd", "b"]);
        Assert.Equal("a", m.Push("abcd"));
        Assert.True(m.Stopped);
    }
}
