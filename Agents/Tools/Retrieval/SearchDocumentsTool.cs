using System.ComponentModel;
using System.Text;
using AspireAi.Agents.Definitions;
using Microsoft.Extensions.AI;

namespace AspireAi.Agents.Tools.Retrieval;

/// <summary><c>search_documents</c>: hybrid search in a Retrieval collection of the tenant; every hit becomes a numbered citation.</summary>
internal sealed class SearchDocumentsTool(RetrievalClient retrieval) : IToolFactory
{
    public string Type => ToolTypes.SearchDocuments;

    public ValueTask<IReadOnlyList<ToolFunction>> CreateAsync(ToolSpec spec, ToolContext context, CancellationToken ct)
    {
        var collection = spec.Collection ?? "default";
        var function = AIFunctionFactory.Create(
            async ([Description("What to look for, in words likely to appear in the documents.")] string query,
                   [Description("How many passages to return (1-10).")] int top_k = 4,
                   CancellationToken cancellationToken = default) =>
            {
                if (string.IsNullOrWhiteSpace(query))
                {
                    throw new ToolException("query must not be empty.");
                }

                var hits = await retrieval.SearchAsync(context.Tenant, collection, query, Math.Clamp(top_k, 1, 10), cancellationToken);
                if (hits.Count == 0)
                {
                    return "No passages matched.";
                }

                var text = new StringBuilder();
                foreach (var hit in hits)
                {
                    var label = context.Cite($"{collection}/{hit.DocumentId}", hit.DocumentId, hit.ChunkIndex, hit.Text, hit.Score);
                    text.AppendLine($"[{label}] (document {hit.DocumentId}) {hit.Text}");
                }

                return text.ToString();
            },
            ToolTypes.SearchDocuments,
            $"Searches the document collection '{collection}' and returns the most relevant passages, each labelled [n] for citation.");
        return ValueTask.FromResult<IReadOnlyList<ToolFunction>>([new ToolFunction(function, IsReadOnly: true, RequiresApproval: false)]);
    }
}
