using System.Runtime.CompilerServices;
using AspireAi.Agents.Runs;
using Microsoft.Extensions.AI;

namespace AspireAi.Agents.Models;

/// <summary>Checks the run's budget before each model call and charges the call's usage (tokens and their price) after it.</summary>
internal sealed class BudgetChatClient(IChatClient inner, RunBudget budget, ModelRoutingOptions policy) : DelegatingChatClient(inner)
{
    public override async Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default)
    {
        budget.EnsureCanCallModel();
        var list = messages as IList<ChatMessage> ?? [.. messages];
        var response = await base.GetResponseAsync(list, options, cancellationToken);
        Charge(response.ModelId, response.Usage, list, options, response.Text);
        return response;
    }

    public override async IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null,
        [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        budget.EnsureCanCallModel();
        var list = messages as IList<ChatMessage> ?? [.. messages];
        UsageDetails? usage = null;
        string? model = null;
        var text = new System.Text.StringBuilder();
        await foreach (var update in base.GetStreamingResponseAsync(list, options, cancellationToken))
        {
            model ??= update.ModelId;
            text.Append(update.Text);
            foreach (var content in update.Contents)
            {
                if (content is UsageContent u)
                {
                    usage = u.Details;
                }
            }

            yield return update;
        }

        Charge(model, usage, list, options, text.ToString());
    }

    /// <summary>A server that reports no usage is charged by estimate, so that token limits still hold.</summary>
    private void Charge(string? model, UsageDetails? usage, IList<ChatMessage> input, ChatOptions? options, string output)
    {
        var inputTokens = usage?.InputTokenCount ?? ModelRoutingChatClient.EstimateTokens(input, options);
        var outputTokens = usage?.OutputTokenCount ?? Math.Max(1, output.Length / 4);
        var price = model is not null && policy.Prices.TryGetValue(model, out var p) ? p : null;
        var cost = price is null ? 0m : (inputTokens * price.InputPer1K + outputTokens * price.OutputPer1K) / 1000m;
        budget.AddUsage(inputTokens, outputTokens, cost);
    }
}
