using AspireAi.Agents.Definitions;
using AspireAi.Agents.Models;
using Microsoft.Agents.AI;
using Microsoft.Agents.AI.Compaction;
using Microsoft.Extensions.AI;

namespace AspireAi.Agents.Threads;

/// <summary>
/// The Agent Framework's <see cref="ChatHistoryProvider"/> extension point over a thread's messages in PostgreSQL
/// (episodic memory), with working memory fitted to the model's context window: when the history would take more than
/// its share of the window, older turns are summarised by the framework's <see cref="SummarizationCompactionStrategy"/>
/// (the most recent ones stay verbatim) — never silently cut. Each run stores its user input and final answer once:
/// a run resumed after a restart does not store them twice.
/// </summary>
internal sealed class PostgresChatHistoryProvider(
    IThreadStore threads,
    string threadId,
    string runId,
    string input,
    ModelRouter router,
    AgentDefinition agent,
    MemoryOptions memory,
    ILoggerFactory loggers) : ChatHistoryProvider(null, null, null)
{
    private const string SummaryPrompt =
        "Summarise the earlier part of this conversation for your own later use: keep every fact, name, number, decision " +
        "and open question; drop pleasantries. Write it as short notes.";

    protected override async ValueTask<IEnumerable<ChatMessage>> ProvideChatHistoryAsync(InvokingContext context, CancellationToken cancellationToken)
    {
        var stored = await threads.MessagesAsync(threadId, cancellationToken);
        IEnumerable<ChatMessage> messages = [.. stored.Where(m => m.RunId != runId).Select(m => m.Message)];
        var budget = (int)(router.ContextWindow(agent.Model) * memory.HistoryShare);
        if (messages.Count() <= memory.KeepRecentMessages || ModelRoutingChatClient.EstimateTokens(messages) <= budget)
        {
            return messages;
        }

        // The framework's target counts what is left once older turns are marked for the summary, not the summary it then
        // inserts: room is kept for it (and the summariser asked to stay within it), or the result would overrun the budget.
        var summaryRoom = Math.Max(32, budget / 4);
        var summarizer = router.For(agent, ModelRole.Summarizer, budget: null).AsBuilder()
            .ConfigureOptions(options => options.MaxOutputTokens ??= summaryRoom)
            .Use(RefuseEmptySummaryAsync, getStreamingResponseFunc: null)
            .Build();
        var strategy = new SummarizationCompactionStrategy(summarizer,
            trigger: index => ModelRoutingChatClient.EstimateTokens(index.GetIncludedMessages()) > budget,
            // One group per stored message: a thread's history holds user and assistant text only.
            minimumPreservedGroups: memory.KeepRecentMessages,
            summarizationPrompt: SummaryPrompt,
            target: index => ModelRoutingChatClient.EstimateTokens(index.GetIncludedMessages()) + summaryRoom <= budget);
        var logger = loggers.CreateLogger<PostgresChatHistoryProvider>();
        // A summary longer than its room leaves the history over budget: summarise again (the summary with the next older
        // turns) until it fits or only the summary and the kept turns are left — each pass has fewer messages, so this ends.
        while (true)
        {
            var compacted = (await CompactionProvider.CompactAsync(strategy, messages, logger, cancellationToken)).ToList();
            if (compacted.Count >= messages.Count() || compacted.Count <= memory.KeepRecentMessages + 1)
            {
                return compacted;
            }

            messages = compacted;
        }
    }

    /// <summary>
    /// An empty summary would replace the older turns with the framework's "[Summary unavailable]": failing the call instead
    /// makes the framework keep those turns as they are (over budget, but nothing lost).
    /// </summary>
    private static async Task<ChatResponse> RefuseEmptySummaryAsync(IEnumerable<ChatMessage> messages, ChatOptions? options, IChatClient inner,
        CancellationToken cancellationToken)
    {
        var response = await inner.GetResponseAsync(messages, options, cancellationToken);
        return string.IsNullOrWhiteSpace(response.Text)
            ? throw new InvalidOperationException("The summariser returned an empty summary; the older turns are kept as they are.")
            : response;
    }

    protected override async ValueTask StoreChatHistoryAsync(InvokedContext context, CancellationToken cancellationToken)
    {
        if (context.InvokeException is not null || await threads.HasRunMessagesAsync(threadId, runId, cancellationToken))
        {
            return;
        }

        var answer = string.Concat(context.ResponseMessages?.Where(m => m.Role == ChatRole.Assistant).Select(m => m.Text) ?? []);
        await threads.AppendAsync(threadId, runId, [new ChatMessage(ChatRole.User, input), new ChatMessage(ChatRole.Assistant, answer)], cancellationToken);
    }
}
