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
        var messages = stored.Where(m => m.RunId != runId).Select(m => m.Message).ToList();
        var budget = (int)(router.ContextWindow(agent.Model) * memory.HistoryShare);
        if (messages.Count <= memory.KeepRecentMessages || ModelRoutingChatClient.EstimateTokens(messages) <= budget)
        {
            return messages;
        }

        var summarizer = router.For(agent, ModelRole.Summarizer, budget: null);
        var strategy = new SummarizationCompactionStrategy(summarizer, CompactionTriggers.TokensExceed(budget),
            minimumPreservedGroups: Math.Max(1, memory.KeepRecentMessages / 2), summarizationPrompt: SummaryPrompt,
            target: CompactionTriggers.TokensBelow(budget));
        var compacted = await CompactionProvider.CompactAsync(strategy, messages, loggers.CreateLogger<PostgresChatHistoryProvider>(), cancellationToken);
        return compacted;
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
