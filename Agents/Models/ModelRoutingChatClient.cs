using System.Runtime.CompilerServices;
using AspireAi.Agents.Runs;
using Microsoft.Extensions.AI;

namespace AspireAi.Agents.Models;

/// <summary>
/// Sends each request to the first candidate model whose context window holds it, and to the next candidate when that one
/// fails (unreachable, server error, timeout). A streaming response falls back only before its first update: after that the
/// caller has seen tokens, and a second model's answer would not continue them.
/// </summary>
internal sealed class ModelRoutingChatClient(IChatModelProvider models, IReadOnlyList<string> candidates, ModelRoutingOptions policy, ILogger logger)
    : IChatClient
{
    public async Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default)
    {
        var list = messages as IList<ChatMessage> ?? [.. messages];
        Exception? last = null;
        foreach (var model in Order(list, options))
        {
            try
            {
                var response = await models.GetChatClient(model).GetResponseAsync(list, options, cancellationToken);
                response.ModelId ??= model;
                return response;
            }
            catch (Exception ex) when (IsModelFailure(ex, cancellationToken))
            {
                logger.LogWarning("Model '{Model}' failed ({Error}); trying the next candidate.", model, ex.Message);
                last = ex;
            }
        }

        throw new ModelUnavailableException($"Every candidate model failed ({string.Join(", ", candidates)}): {last?.Message}", last);
    }

    public async IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null,
        [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var list = messages as IList<ChatMessage> ?? [.. messages];
        Exception? last = null;
        foreach (var model in Order(list, options))
        {
            var stream = models.GetChatClient(model).GetStreamingResponseAsync(list, options, cancellationToken).GetAsyncEnumerator(cancellationToken);
            ChatResponseUpdate? first = null;
            try
            {
                if (await stream.MoveNextAsync())
                {
                    first = stream.Current;
                }
            }
            catch (Exception ex) when (IsModelFailure(ex, cancellationToken))
            {
                logger.LogWarning("Model '{Model}' failed before its first token ({Error}); trying the next candidate.", model, ex.Message);
                last = ex;
                await stream.DisposeAsync();
                continue;
            }

            try
            {
                if (first is not null)
                {
                    first.ModelId ??= model;
                    yield return first;
                }

                while (await stream.MoveNextAsync())
                {
                    yield return stream.Current;
                }
            }
            finally
            {
                await stream.DisposeAsync();
            }

            yield break;
        }

        throw new ModelUnavailableException($"Every candidate model failed ({string.Join(", ", candidates)}): {last?.Message}", last);
    }

    /// <summary>Candidates whose window holds the request first (by a 4-characters-per-token estimate), the rest after.</summary>
    private IEnumerable<string> Order(IList<ChatMessage> messages, ChatOptions? options)
    {
        var estimate = EstimateTokens(messages, options) + (options?.MaxOutputTokens ?? 512);
        var fits = candidates.Where(m => Window(m) >= estimate).ToList();
        return fits.Concat(candidates.Except(fits).OrderByDescending(Window));
    }

    private int Window(string model) => policy.ContextWindows.TryGetValue(model, out var window) ? window : policy.DefaultContextWindow;

    /// <summary>
    /// A whole request: its messages, and what the options add to the prompt — the instructions (the system prompt, with
    /// recalled memory) and the tools' declarations (name, description, JSON schema).
    /// </summary>
    public static int EstimateTokens(IEnumerable<ChatMessage> messages, ChatOptions? options) =>
        EstimateTokens(messages)
        + (options?.Instructions?.Length ?? 0) / 4
        + (options?.Tools?.Sum(t => t.Name.Length + t.Description.Length + (t is AIFunctionDeclaration f ? f.JsonSchema.GetRawText().Length : 0)) ?? 0) / 4;

    /// <summary>About four characters per token for English with BPE vocabularies; enough to choose between windows.</summary>
    public static int EstimateTokens(IEnumerable<ChatMessage> messages) =>
        messages.Sum(m => m.Contents.Sum(c => c switch
        {
            TextContent t => t.Text.Length,
            FunctionCallContent f => f.Name.Length + (f.Arguments?.Sum(a => a.Key.Length + (a.Value?.ToString()?.Length ?? 0)) ?? 0),
            FunctionResultContent r => r.Result?.ToString()?.Length ?? 0,
            _ => 0,
        }) / 4 + 4);

    private static bool IsModelFailure(Exception ex, CancellationToken ct) =>
        !ct.IsCancellationRequested && ex is not RunLimitException and not OperationCanceledException { CancellationToken.IsCancellationRequested: true }
        && ex is HttpRequestException or System.ClientModel.ClientResultException or TimeoutException or TaskCanceledException
            or Polly.ExecutionRejectedException or IOException;

    public object? GetService(Type serviceType, object? serviceKey = null) => serviceType.IsInstanceOfType(this) ? this : null;

    public void Dispose()
    {
    }
}

/// <summary>No candidate model answered.</summary>
public sealed class ModelUnavailableException(string message, Exception? inner) : Exception(message, inner);
