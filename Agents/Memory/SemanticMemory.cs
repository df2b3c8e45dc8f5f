using System.ComponentModel;
using AspireAi.Agents.Definitions;
using AspireAi.Agents.Tools;
using AspireAi.Agents.Tools.Retrieval;
using Microsoft.Agents.AI;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.Options;

namespace AspireAi.Agents.Memory;

/// <summary>
/// Semantic memory: facts an agent chose to remember (its <c>remember</c> tool), embedded and stored through Retrieval in
/// the collection <c>agent-memory-{agent}</c> of the run's tenant, and recalled by similarity to the input before each answer
/// (an Agent Framework <see cref="AIContextProvider"/>).
/// </summary>
public sealed class SemanticMemory(RetrievalClient retrieval, IOptions<AgentsOptions> options, ILogger<SemanticMemory> logger) : IToolFactory
{
    public string Type => ToolTypes.Memory;

    public string Collection(string agent) => options.Value.Memory.CollectionPrefix + agent.ToLowerInvariant();

    public ValueTask<IReadOnlyList<ToolFunction>> CreateAsync(ToolSpec spec, ToolContext context, CancellationToken ct)
    {
        var function = AIFunctionFactory.Create(
            async ([Description("One self-contained fact worth remembering in later conversations.")] string fact, CancellationToken cancellationToken = default) =>
            {
                if (string.IsNullOrWhiteSpace(fact))
                {
                    throw new ToolException("fact must not be empty.");
                }

                var collection = Collection(context.Agent.Name);
                await retrieval.EnsureCollectionAsync(context.Tenant, collection, cancellationToken);
                await retrieval.IngestAsync(context.Tenant, collection, fact.Trim(), new { run_id = context.RunId, kind = "fact" }, cancellationToken);
                return "Remembered.";
            },
            "remember",
            "Stores a fact in long-term memory; facts are recalled in later runs when relevant.");
        return ValueTask.FromResult<IReadOnlyList<ToolFunction>>([new ToolFunction(function, IsReadOnly: false, RequiresApproval: false)]);
    }

    /// <summary>The context provider that recalls facts relevant to the run's input.</summary>
    public AIContextProvider Recall(ToolContext context) => new RecallProvider(this, retrieval, context, options.Value.Memory.RecallCount, logger);

    private sealed class RecallProvider(SemanticMemory memory, RetrievalClient retrieval, ToolContext context, int count, ILogger logger) : AIContextProvider(null, null, null)
    {
        protected override async ValueTask<AIContext> ProvideAIContextAsync(InvokingContext invoking, CancellationToken cancellationToken)
        {
            var query = string.Join("\n", invoking.AIContext.Messages?.Where(m => m.Role == ChatRole.User).Select(m => m.Text).TakeLast(1) ?? []);
            if (string.IsNullOrWhiteSpace(query))
            {
                return new AIContext();
            }

            IReadOnlyList<SearchHit> hits;
            try
            {
                hits = await retrieval.SearchAsync(context.Tenant, memory.Collection(context.Agent.Name), query, count, cancellationToken);
            }
            catch (ToolException)
            {
                return new AIContext(); // nothing remembered yet: the collection does not exist
            }
            catch (Exception ex) when (ex is HttpRequestException or Polly.ExecutionRejectedException && !cancellationToken.IsCancellationRequested)
            {
                // Recall is an aid, not the answer: without Retrieval the run goes on, and the log says why it remembered nothing.
                logger.LogWarning("Semantic memory recall for agent {Agent} failed: {Error}", context.Agent.Name, ex.Message);
                return new AIContext();
            }

            return hits.Count == 0
                ? new AIContext()
                : new AIContext { Instructions = "Facts you remembered in earlier conversations:\n" + string.Join("\n", hits.Select(h => "- " + h.Text)) };
        }
    }
}
