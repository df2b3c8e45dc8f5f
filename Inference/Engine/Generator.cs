using AspireAi.Inference.Backends;
using AspireAi.Inference.Models;
using AspireAi.Inference.Tokenization;

namespace AspireAi.Inference.Engine;

/// <summary>
/// The simplest engine loop: one sequence at a time over the paged KV cache — prefill the prompt in chunks of the model's
/// batch size, then decode one token per step until a stop token, a stop string, the token limit or the context end.
/// The serving scheduler replaces this loop and <see cref="KvBlockPool"/>; the model and backend calls stay the same.
/// </summary>
public sealed class Generator : IDisposable
{
    private readonly IForwardModel _model;
    private readonly ITokenizer? _tokenizer;
    private readonly PagedKvCache _cache;
    private readonly KvBlockPool _pool;
    private readonly ForwardBatch _batch;
    private readonly float[] _logits;

    /// <param name="blockSize">Tokens per KV block (vLLM's default 16).</param>
    /// <param name="kvCacheDtype">The KV cache's element type (<c>--kv-cache-dtype</c>; resolved by the model's backend).</param>
    public Generator(IForwardModel model, ITokenizer? tokenizer = null, int blockSize = 16, KvCacheDtype kvCacheDtype = KvCacheDtype.Float32)
    {
        _model = model;
        _tokenizer = tokenizer;
        var context = model.Config.ContextLength;
        var blocks = (context + blockSize - 1) / blockSize;
        _pool = new KvBlockPool(blocks, blockSize);
        _cache = model.CreateKvCache(model.KvCacheShape(blockSize, blocks, kvCacheDtype));
        _batch = new ForwardBatch(model.MaxBatchTokens, 1, blocks);
        _logits = new float[model.MaxLogitRows * model.Config.VocabularySize];
    }

    public IForwardModel Model => _model;

    /// <summary>Generates after <paramref name="prompt"/>; <paramref name="onToken"/> sees each token as it is produced.</summary>
    public GenerationResult Generate(IReadOnlyList<int> prompt, GenerationRequest request, Action<GeneratedToken>? onToken = null, CancellationToken cancellation = default)
    {
        var vocabulary = _model.Config.VocabularySize;
        var context = _model.Config.ContextLength;
        if (prompt.Count == 0)
        {
            throw new ArgumentException("The prompt has no tokens.", nameof(prompt));
        }

        if (prompt.Count >= context)
        {
            throw new ArgumentException($"The prompt has {prompt.Count} tokens; the model's context is {context}.", nameof(prompt));
        }

        foreach (var id in prompt)
        {
            if ((uint)id >= (uint)vocabulary)
            {
                throw new ArgumentOutOfRangeException(nameof(prompt), id, $"Token id {id} is outside the vocabulary of {vocabulary}.");
            }
        }

        if (request.StopStrings.Count > 0 && _tokenizer is null)
        {
            throw new ArgumentException("Stop strings need the model's tokenizer.", nameof(request));
        }

        var sampler = new Sampler(vocabulary, request.Sampling);
        sampler.SetPrompt(prompt.ToArray());
        var sequence = new SequenceBlocks(_pool);
        try
        {
            var promptLogprobs = request.PromptLogprobs > 0 ? new List<TokenLogprob[]>() : null;
            var last = Prefill(prompt, sequence, request.PromptLogprobs, promptLogprobs, cancellation);
            return Decode(prompt, sequence, sampler, request, last, promptLogprobs, onToken, cancellation);
        }
        finally
        {
            sequence.Release();
        }
    }

    /// <summary>Runs the prompt through the model; returns the logits row of its last token (in <see cref="_logits"/>).</summary>
    private int Prefill(IReadOnlyList<int> prompt, SequenceBlocks sequence, int promptTopK, List<TokenLogprob[]>? promptLogprobs, CancellationToken cancellation)
    {
        var vocabulary = _model.Config.VocabularySize;
        var chunk = promptTopK > 0 ? _model.MaxLogitRows : _model.MaxBatchTokens;
        var lastRow = 0;
        for (var start = 0; start < prompt.Count; start += chunk)
        {
            cancellation.ThrowIfCancellationRequested();
            var end = Math.Min(prompt.Count, start + chunk);
            Reserve(sequence, end);
            BeginSequence(sequence);
            for (var p = start; p < end; p++)
            {
                _batch.AddToken(prompt[p], p, 0, sequence.Slot(p), needsLogits: promptTopK > 0 || p == prompt.Count - 1);
            }

            _model.Forward(_batch, _cache, _logits);
            if (promptLogprobs is not null)
            {
                // Row i predicts prompt token p+1; the last prompt token's row predicts the first generated token.
                for (var i = 0; i < end - start; i++)
                {
                    if (start + i + 1 < prompt.Count)
                    {
                        promptLogprobs.Add(Logprobs.Top(_logits.AsSpan(i * vocabulary, vocabulary), promptTopK));
                    }
                }
            }

            lastRow = _batch.LogitCount - 1;
        }

        return lastRow;
    }

    private GenerationResult Decode(
        IReadOnlyList<int> prompt, SequenceBlocks sequence, Sampler sampler, GenerationRequest request, int logitRow,
        List<TokenLogprob[]>? promptLogprobs, Action<GeneratedToken>? onToken, CancellationToken cancellation)
    {
        var vocabulary = _model.Config.VocabularySize;
        var context = _model.Config.ContextLength;
        var generated = new List<int>();
        var topLogprobs = request.TopLogprobs > 0 ? new List<TokenLogprob[]>() : null;
        var detokenizer = _tokenizer is null ? null : new StreamingDetokenizer(_tokenizer);
        var stops = new StopStringMatcher(request.StopStrings);
        var text = new System.Text.StringBuilder();
        var finish = "length";
        var position = prompt.Count;
        while (generated.Count < request.MaxTokens)
        {
            cancellation.ThrowIfCancellationRequested();
            var logits = _logits.AsSpan(logitRow * vocabulary, vocabulary);
            var top = topLogprobs is not null ? Logprobs.Top(logits, request.TopLogprobs) : null;
            var token = sampler.Sample(logits);
            var logprob = top is not null ? (float)(logits[token] - Logprobs.LogSumExp(logits)) : float.NaN;
            if (request.StopTokenIds.Contains(token))
            {
                finish = "stop";
                break;
            }

            sampler.Accept(token);
            generated.Add(token);
            topLogprobs?.Add(top!);
            var piece = detokenizer is null ? "" : stops.Push(detokenizer.Push(token));
            text.Append(piece);
            onToken?.Invoke(new GeneratedToken(token, piece, logprob, top));
            if (stops.Stopped)
            {
                finish = "stop";
                break;
            }

            if (generated.Count == request.MaxTokens || position + 1 >= context)
            {
                break;
            }

            Reserve(sequence, position + 1);
            BeginSequence(sequence);
            _batch.AddToken(token, position, 0, sequence.Slot(position), needsLogits: true);
            _model.Forward(_batch, _cache, _logits);
            logitRow = 0;
            position++;
        }

        if (detokenizer is not null && !stops.Stopped)
        {
            var tail = stops.Push(detokenizer.Flush()) + stops.Flush();
            text.Append(tail);
            if (tail.Length > 0)
            {
                onToken?.Invoke(new GeneratedToken(-1, tail, 0, null));
            }
        }

        return new GenerationResult(prompt.ToArray(), generated.ToArray(), text.ToString(), finish, topLogprobs, promptLogprobs);
    }

    private void Reserve(SequenceBlocks sequence, int tokens)
    {
        if (!sequence.TryReserve(tokens))
        {
            throw new InvalidOperationException($"The KV cache has no room for {tokens} tokens.");
        }
    }

    private void BeginSequence(SequenceBlocks sequence)
    {
        _batch.Clear();
        Span<int> table = stackalloc int[sequence.Blocks.Count];
        sequence.CopyTableTo(table);
        _batch.AddSequence(table);
    }

    public void Dispose() => _cache.Dispose();
}
