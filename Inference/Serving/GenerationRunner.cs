using System.Diagnostics;
using System.Text;
using System.Threading.Channels;
using AspireAi.Inference.Engine;
using AspireAi.Inference.Serving.OpenAi;

namespace AspireAi.Inference.Serving;

/// <summary>What one choice produced, collected from its events.</summary>
internal sealed class ChoiceResult
{
    public StringBuilder Text { get; } = new();

    public List<int> TokenIds { get; } = [];

    public List<float> Logprobs { get; } = [];

    public List<TokenLogprob[]?> TopLogprobs { get; } = [];

    public string FinishReason { get; set; } = "stop";

    public SequenceUsage? Usage { get; set; }

    /// <summary>Logprobs of prompt tokens 1, 2, … (when asked for; they arrive before the first token).</summary>
    public IReadOnlyList<PromptTokenLogprob>? PromptLogprobs { get; private set; }

    public void Add(SequenceEvent e)
    {
        PromptLogprobs ??= e.PromptLogprobs;
        Text.Append(e.Text);
        if (e.TokenId >= 0)
        {
            TokenIds.Add(e.TokenId);
            Logprobs.Add(e.Logprob);
            TopLogprobs.Add(e.TopLogprobs);
        }

        if (e.FinishReason is { } reason)
        {
            FinishReason = reason;
            Usage = e.Usage;
        }
    }
}

/// <summary>
/// Turns a tokenized prompt and the request's settings into engine sequences (one per choice), and reads them back: shared
/// by the chat and text completion endpoints, the Batch API and the in-process chat client.
/// </summary>
internal static class GenerationRunner
{
    /// <summary>Submits <c>settings.N</c> sequences. Seeded requests give choice i the seed + i, so each is reproducible.</summary>
    /// <param name="constraint">Makes a fresh constraint per choice (constrained decoding), or null.</param>
    /// <exception cref="AdmissionException">Too long for the context or the cache, or the queue is full.</exception>
    public static EngineRequestHandle[] Submit(ServedModel model, int[] prompt, GenerationSettings settings, Func<ITokenConstraint>? constraint,
        string tenant, Activity? activity, CancellationToken cancellation)
    {
        var context = model.Config.ContextLength;
        var maxTokens = settings.MaxTokens ?? context - prompt.Length;
        if (maxTokens <= 0 || prompt.Length + maxTokens > context)
        {
            throw new AdmissionException(
                $"This model's maximum context length is {context} tokens. However, you requested {prompt.Length + Math.Max(maxTokens, 1)} tokens ({prompt.Length} in the messages, {Math.Max(maxTokens, 1)} in the completion). Please reduce the length of the messages or completion.",
                "context_length_exceeded", settings.MaxTokens is null ? "messages" : "max_tokens");
        }

        var stopIds = settings.IgnoreEos ? new HashSet<int>() : new HashSet<int>(model.Tokenizer.EndOfGenerationIds);
        var handles = new EngineRequestHandle[settings.N];
        try
        {
            for (var i = 0; i < settings.N; i++)
            {
                var choiceConstraint = constraint?.Invoke();
                if (choiceConstraint is StructuredOutput.GrammarConstraint grammar && grammar.MinimumLength > maxTokens)
                {
                    throw new ArgumentException(
                        $"max_tokens {maxTokens} is too small: the shortest output that satisfies the requested format takes {grammar.MinimumLength} tokens.");
                }

                handles[i] = model.Engine.Submit(new EngineRequest
                {
                    PromptTokenIds = prompt,
                    MaxTokens = maxTokens,
                    Sampling = settings.Sampling.Seed is { } seed ? settings.Sampling with { Seed = unchecked(seed + i) } : settings.Sampling,
                    StopTokenIds = stopIds,
                    StopStrings = settings.Stop,
                    Logprobs = settings.Logprobs,
                    TopLogprobs = settings.TopLogprobs,
                    PromptLogprobs = settings.PromptLogprobs,
                    Priority = settings.Priority,
                    Tenant = tenant,
                    Constraint = choiceConstraint,
                    Activity = activity,
                }, cancellation);
            }
        }
        catch
        {
            foreach (var handle in handles.Where(h => h is not null))
            {
                handle.Abort();
            }

            throw;
        }

        return handles;
    }

    /// <summary>Every choice to its end.</summary>
    public static async Task<ChoiceResult[]> CollectAsync(EngineRequestHandle[] handles, CancellationToken cancellation)
    {
        var results = new ChoiceResult[handles.Length];
        await Task.WhenAll(handles.Select(async (handle, i) =>
        {
            var result = new ChoiceResult();
            await foreach (var e in handle.ReadAllAsync(cancellation))
            {
                result.Add(e);
            }

            results[i] = result;
        }));
        return results;
    }

    /// <summary>The events of every choice, interleaved as they come.</summary>
    public static async IAsyncEnumerable<(int Choice, SequenceEvent Event)> MergeAsync(EngineRequestHandle[] handles,
        [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellation)
    {
        if (handles.Length == 1)
        {
            await foreach (var e in handles[0].ReadAllAsync(cancellation))
            {
                yield return (0, e);
            }

            yield break;
        }

        var merged = Channel.CreateUnbounded<(int, SequenceEvent)>(new UnboundedChannelOptions { SingleReader = true });
        var pumps = handles.Select(async (handle, i) =>
        {
            await foreach (var e in handle.ReadAllAsync(cancellation))
            {
                await merged.Writer.WriteAsync((i, e), cancellation);
            }
        }).ToArray();
        _ = Task.WhenAll(pumps).ContinueWith(t => merged.Writer.TryComplete(t.Exception?.InnerException), TaskScheduler.Default);
        await foreach (var item in merged.Reader.ReadAllAsync(cancellation))
        {
            yield return item;
        }
    }

    /// <summary>
    /// Ends a streamed response the same way for chat and text completions: the usage chunk when the client asked for it
    /// (<c>stream_options.include_usage</c>), <c>[DONE]</c>, and the request's span closed with the results.
    /// </summary>
    public static async Task EndStreamAsync(HttpResponse response, string chunkObject, string id, long created, string modelId,
        int promptTokens, IReadOnlyList<ChoiceResult> results, bool includeUsage, Activity? activity, CancellationToken cancellation)
    {
        if (includeUsage)
        {
            await ServerSentEvents.WriteAsync(response, new
            {
                id,
                @object = chunkObject,
                created,
                model = modelId,
                choices = Array.Empty<object>(),
                usage = Usage(promptTokens, results.Select(r => r.Usage)),
            }, cancellation);
        }

        await ServerSentEvents.DoneAsync(response, cancellation);
        ServingTelemetry.Finish(activity, id, modelId, promptTokens, results);
    }

    /// <summary>OpenAI's usage object: the prompt counted once, completions summed, cached prompt tokens reported.</summary>
    public static object Usage(int promptTokens, IEnumerable<SequenceUsage?> choices)
    {
        var list = choices.Where(u => u is not null).ToList();
        var completion = list.Sum(u => u!.CompletionTokens);
        return new
        {
            prompt_tokens = promptTokens,
            completion_tokens = completion,
            total_tokens = promptTokens + completion,
            prompt_tokens_details = new { cached_tokens = list.Count == 0 ? 0 : list.Max(u => u!.CachedPromptTokens) },
        };
    }
}
