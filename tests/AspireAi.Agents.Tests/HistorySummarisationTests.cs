using System.Text.RegularExpressions;
using AspireAi.TestSupport;
using Microsoft.Extensions.AI;

namespace AspireAi.Agents.Tests;

/// <summary>
/// Working memory: a thread whose history outgrows <c>Agents:Memory:HistoryShare</c> of the model's window reaches the model
/// as a summary of the older turns followed by the most recent ones verbatim — every older turn went into the summary, none
/// was cut. Asserted on what the model actually received. The model is scripted, because the test must tell the
/// summariser's request from the answer's and needs a summary that shows what the summariser was given.
/// </summary>
public sealed partial class HistorySummarisationTests(PostgresServer postgres)
{
    private const string SummaryPromptStart = "Summarise the earlier part of this conversation";

    private static bool IsSummaryRequest(IReadOnlyList<ChatMessage> messages) =>
        messages.FirstOrDefault() is { Role.Value: "system" } first && first.Text.StartsWith(SummaryPromptStart, StringComparison.Ordinal);

    /// <summary>The summariser lists the code words of the turns it was given; the answer acknowledges the turn's code word.</summary>
    private static ChatResponse Script(string model, IReadOnlyList<ChatMessage> messages, ChatOptions? options) =>
        IsSummaryRequest(messages)
            ? ScriptedModels.Text("Code words so far: " + string.Join(", ", messages.Skip(1).SelectMany(m => CodeWord().Matches(m.Text)).Select(m => m.Groups[1].Value).Distinct()))
            : ScriptedModels.Text($"Noted {(CodeWord().Match(ScriptedModels.LastUser(messages)) is { Success: true } m ? m.Groups[1].Value : "nothing")}.");

    [GeneratedRegex(@"code word is (\w+)")]
    private static partial Regex CodeWord();

    [Fact]
    public async Task Older_turns_beyond_the_history_share_are_summarised_and_only_as_many_as_needed()
    {
        // A 300-token window, half of it for history: 150 tokens (about 600 characters), room for the summary and several turns.
        var (stored, history, summarised) = await ConverseAsync(window: 300);

        var verbatim = history.Skip(1).Select(m => m.Text).ToList();
        Assert.True(verbatim.Count > 4, $"more than the 4 kept at least fit in the window; got {verbatim.Count}");
        Assert.True(verbatim.Count < stored.Count, "older turns were summarised");
        AssertSummarisedThenVerbatim(stored, history, summarised, verbatim.Count);
        // It fits: the history the model got is within its share of the window, by the estimate the router uses.
        var tokens = Models.ModelRoutingChatClient.EstimateTokens(history);
        Assert.True(tokens <= 150, $"history of about {tokens} tokens in {history.Count} messages");
    }

    [Fact]
    public async Task The_most_recent_turns_stay_verbatim_even_when_they_alone_exceed_the_history_share()
    {
        // An 80-token window: 40 tokens of history, less than the 4 most recent messages alone; those are kept anyway.
        var (stored, history, summarised) = await ConverseAsync(window: 80);

        AssertSummarisedThenVerbatim(stored, history, summarised, verbatimCount: 4);
    }

    /// <summary>Eight turns on a thread, then a question: what was stored, the history the answer's model call got, and the summariser's request.</summary>
    private async Task<(List<string> Stored, List<ChatMessage> History, IReadOnlyList<ChatMessage> Summarised)> ConverseAsync(int window)
    {
        var models = new ScriptedModels(Script);
        await using var host = new AgentsHost(await postgres.CreateDatabaseAsync($"agents_history_{window}"), models, settings: new Dictionary<string, string?>
        {
            ["Agents:Models:ContextWindows:worker"] = window.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["Agents:Memory:HistoryShare"] = "0.5",
            ["Agents:Memory:KeepRecentMessages"] = "4",
        });
        var client = host.ClientFor("t");
        await client.CreateAgentAsync(new { name = "notes", instructions = "Keep notes.", model = "worker" });
        var thread = await client.CreateThreadAsync();
        foreach (var word in Words)
        {
            var turn = await client.RunAsync(thread, "notes", $"Please note that the code word is {word}. It matters for the audit later this quarter, so keep it safe.");
            Assert.Equal("completed", turn.GetProperty("status").GetString());
        }

        var stored = (await (await client.GetAsync($"/v1/threads/{thread}/messages")).JsonAsync(System.Net.HttpStatusCode.OK))
            .GetProperty("data").EnumerateArray().Select(m => m.GetProperty("content").GetString()!).ToList();
        Assert.Equal(Words.Length * 2, stored.Count);

        var final = await client.RunAsync(thread, "notes", "Which code words did I give you?");
        Assert.Equal("completed", final.GetProperty("status").GetString());
        var requests = models.Requests.ToList();
        Assert.False(IsSummaryRequest(requests[^1]));
        Assert.True(IsSummaryRequest(requests[^2]), "this run's summary is made just before its answer");
        var answer = requests[^1];
        Assert.Equal("Which code words did I give you?", answer[^1].Text);
        return (stored, [.. answer.Take(answer.Count - 1)], requests[^2]);
    }

    private static readonly string[] Words = ["amber", "birch", "cobalt", "dune", "ember", "fjord", "granite", "harbor"];

    private static void AssertSummarisedThenVerbatim(List<string> stored, List<ChatMessage> history, IReadOnlyList<ChatMessage> summarised, int verbatimCount)
    {
        // The summary comes first, then the most recent messages verbatim and in order.
        Assert.Equal(ChatRole.Assistant, history[0].Role);
        Assert.StartsWith("[Summary]", history[0].Text);
        Assert.Equal(stored.TakeLast(verbatimCount), history.Skip(1).Select(m => m.Text));
        // Nothing silently dropped: every older message was given to the summariser, and its code word is in the summary.
        var older = stored.Take(stored.Count - verbatimCount).ToList();
        Assert.Equal(older, summarised.Skip(1).Select(m => m.Text));
        var olderWords = Words.Where(w => older.Any(o => o.Contains($"code word is {w}", StringComparison.Ordinal))).ToList();
        Assert.NotEmpty(olderWords);
        Assert.All(olderWords, w => Assert.Contains(w, history[0].Text));
    }
}
