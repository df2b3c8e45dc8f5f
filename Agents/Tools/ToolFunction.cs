using System.Collections.Concurrent;
using AspireAi.Agents.Definitions;
using Microsoft.Extensions.AI;

namespace AspireAi.Agents.Tools;

/// <summary>A function the model may call, with what the run needs to know about it.</summary>
/// <param name="Function">The Microsoft.Extensions.AI function (name, description, JSON schema, invocation).</param>
/// <param name="IsReadOnly">Safe to run again when a restart interrupted it before its result was recorded.</param>
/// <param name="RequiresApproval">Pauses the run until a person approves or rejects the call.</param>
public sealed record ToolFunction(AIFunction Function, bool IsReadOnly, bool RequiresApproval)
{
    public string Name => Function.Name;
}

/// <summary>A source cited by a tool result, reported with the run's answer.</summary>
public sealed record Citation(
    [property: System.Text.Json.Serialization.JsonPropertyName("index")] string Index,
    [property: System.Text.Json.Serialization.JsonPropertyName("source")] string Source,
    [property: System.Text.Json.Serialization.JsonPropertyName("document_id")] string? DocumentId,
    [property: System.Text.Json.Serialization.JsonPropertyName("chunk_index")] int? ChunkIndex,
    [property: System.Text.Json.Serialization.JsonPropertyName("text")] string Text,
    [property: System.Text.Json.Serialization.JsonPropertyName("score")] double? Score);

/// <summary>What tools know about the run they serve.</summary>
public sealed class ToolContext(string tenant, string runId, AgentDefinition agent, string workspace)
{
    private int _citationCount;

    public string Tenant { get; } = tenant;
    public string RunId { get; } = runId;
    public AgentDefinition Agent { get; } = agent;
    /// <summary>This run's folder: file tools are confined to it, and run_code's scratch lives in it.</summary>
    public string Workspace { get; } = workspace;
    public ConcurrentQueue<Citation> Citations { get; } = new();

    public int CitationCount => Volatile.Read(ref _citationCount);

    /// <summary>Citations numbered after <paramref name="count"/> (those one tool call added; labels are unique even across concurrent steps).</summary>
    public IReadOnlyList<Citation> CitationsAfter(int count) =>
        [.. Citations.Where(c => int.Parse(c.Index, System.Globalization.CultureInfo.InvariantCulture) > count)];

    /// <summary>Puts back citations of a tool call whose recorded result is reused after a restart.</summary>
    public void Restore(IEnumerable<Citation> citations)
    {
        foreach (var citation in citations)
        {
            if (Citations.Any(c => c.Index == citation.Index))
            {
                continue;
            }

            Citations.Enqueue(citation);
            var index = int.Parse(citation.Index, System.Globalization.CultureInfo.InvariantCulture);
            int current;
            while ((current = Volatile.Read(ref _citationCount)) < index && Interlocked.CompareExchange(ref _citationCount, index, current) != current)
            {
            }
        }
    }

    /// <summary>Adds a citation and returns its label (<c>[1]</c>, <c>[2]</c>, …) for the tool result the model reads.</summary>
    public string Cite(string source, string? documentId, int? chunkIndex, string text, double? score)
    {
        var index = Interlocked.Increment(ref _citationCount).ToString(System.Globalization.CultureInfo.InvariantCulture);
        Citations.Enqueue(new Citation(index, source, documentId, chunkIndex, text, score));
        return index;
    }
}

/// <summary>Makes the functions of one tool type for a run. Registered in DI; the catalog picks by <see cref="Type"/>.</summary>
public interface IToolFactory
{
    string Type { get; }

    ValueTask<IReadOnlyList<ToolFunction>> CreateAsync(ToolSpec spec, ToolContext context, CancellationToken ct);
}

/// <summary>A tool refused or failed in a way the model should read (and the run's events show), not a crash of the run.</summary>
public sealed class ToolException(string message) : Exception(message);
