using AspireAi.Inference.Backends;
using AspireAi.Inference.Backends.Cuda;
using AspireAi.Inference.TensorParallel;

namespace AspireAi.Inference.Models;

/// <summary>
/// The decoder-only transformer of llama, qwen2 (q/k/v biases) and qwen3 (per-head q/k RMSNorm), written once over
/// <see cref="IBackend"/>: pre-norm blocks of grouped-query attention with RoPE and a SwiGLU feed-forward, each block's
/// projection back into the residual stream one call with the residual add and the next norm (a device backend folds the
/// norm into the projections around it). One call runs one engine step of any mix of prefill and decode tokens. Under tensor
/// parallelism each rank runs this same pass on its share of every layer, with an all-reduce after the two projections
/// whose inputs are split (attention output, down) and a gather of the vocabulary-parallel logits.
/// </summary>
public sealed class LlamaModel : IForwardModel
{
    private readonly IBackend _backend;
    private readonly TensorParallelRank? _rank;
    private readonly ModelConfig _local;
    private readonly LlamaWeights _weights;
    private readonly RotaryEmbedding _rope;
    private readonly DeviceTensor _hidden;
    private readonly DeviceTensor _normed;
    private readonly DeviceTensor _query;
    private readonly DeviceTensor _key;
    private readonly DeviceTensor _value;
    private readonly DeviceTensor _attention;
    private readonly DeviceTensor _projection;
    private readonly DeviceTensor _gate;
    private readonly DeviceTensor _up;
    private readonly DeviceTensor _activated;
    private readonly DeviceTensor _logitInput;
    private readonly DeviceTensor _logits;
    private readonly DeviceTensor? _logitShard;
    private readonly MatMulTarget[][] _queryKeyValue;
    private readonly MatMulTarget[][] _gateUp;

    /// <param name="maxBatchTokens">Most tokens one step may carry.</param>
    /// <param name="maxLogitRows">Most tokens of one step whose logits are wanted (prompt logprobs want every prompt token).</param>
    /// <param name="rank">This model's rank of a tensor-parallel group (null: the whole model on this backend).</param>
    public LlamaModel(IModelSource source, IBackend backend, int maxBatchTokens, int maxLogitRows, IProgress<(int Done, int Total)>? progress = null,
        TensorParallelRank? rank = null)
    {
        Config = source.Config;
        var c = Config;
        if (c.HeadCount % c.KvHeadCount != 0)
        {
            throw new InvalidDataException($"{source.Path}: {c.HeadCount} attention heads are not a multiple of {c.KvHeadCount} KV heads.");
        }

        if (c.HeadDim % 2 != 0)
        {
            throw new InvalidDataException($"{source.Path}: head dimension {c.HeadDim} is odd; RoPE rotates pairs.");
        }

        _backend = backend;
        _rank = rank;
        var local = _local = rank?.Config ?? c;
        MaxBatchTokens = maxBatchTokens;
        MaxLogitRows = Math.Min(maxLogitRows, maxBatchTokens);
        _weights = LlamaWeights.Load(source, backend, progress, rank);
        _rope = backend.CreateRotaryEmbedding(new RopeSpec(
            c.HeadDim, c.RopeTheta, c.RopeStyle, c.RopeFrequencyFactors ?? c.RopeScaling?.FrequencyFactors(c.HeadDim, c.RopeTheta), c.ContextLength));
        var t = maxBatchTokens;
        _hidden = backend.CreateTensor(t, c.EmbeddingLength);
        _normed = backend.CreateTensor(t, c.EmbeddingLength);
        _query = backend.CreateTensor(t, local.HeadCount * c.HeadDim);
        _key = backend.CreateTensor(t, local.KvHeadCount * c.HeadDim);
        _value = backend.CreateTensor(t, local.KvHeadCount * c.HeadDim);
        _attention = backend.CreateTensor(t, local.HeadCount * c.HeadDim);
        _projection = backend.CreateTensor(t, c.EmbeddingLength);
        _gate = backend.CreateTensor(t, local.FeedForwardLength);
        _up = backend.CreateTensor(t, local.FeedForwardLength);
        _activated = backend.CreateTensor(t, local.FeedForwardLength);
        _logitInput = backend.CreateTensor(MaxLogitRows, c.EmbeddingLength);
        _logits = backend.CreateTensor(MaxLogitRows, c.VocabularySize);
        _logitShard = rank is null ? null : backend.CreateTensor(MaxLogitRows, local.VocabularySize);
        _queryKeyValue = _weights.Layers.Select(w => new MatMulTarget[] { new(w.Query, _query), new(w.Key, _key), new(w.Value, _value) }).ToArray();
        _gateUp = _weights.Layers.Select(w => new MatMulTarget[] { new(w.Gate, _gate), new(w.Up, _up) }).ToArray();
    }

    public ModelConfig Config { get; }

    public int MaxBatchTokens { get; }

    public int MaxLogitRows { get; }

    public IBackend Backend => _backend;

    /// <summary>The weights on the backend (benchmarks time the projections alone over them).</summary>
    public LlamaWeights Weights => _weights;

    /// <summary>Bytes of weights a decode step reads.</summary>
    public long WeightBytesPerStep => _weights.BytesPerStep;

    /// <summary>The KV cache geometry for this model (this rank's KV heads) with the given paging.</summary>
    public KvCacheShape KvCacheShape(int blockSize, int blockCount) =>
        new(Config.LayerCount, _local.KvHeadCount, Config.HeadDim, blockSize, blockCount);

    public bool CanCaptureSteps => _backend is CudaBackend;

    public IStepGraph CaptureStep(ForwardBatch batch, PagedKvCache cache)
    {
        var device = _backend as CudaBackend ?? throw new NotSupportedException($"{_backend.Description} cannot record steps as graphs.");
        var graph = device.CaptureStep(() => ForwardToLogits(batch, cache), out var logits);
        return new CudaStepGraph(device, graph, logits);
    }

    /// <summary>
    /// Runs one step — every token of the batch through all layers, its key/value written to the cache — and leaves the
    /// logits of <c>batch.LogitTokenIndices</c> in the backend's tensor (returned; rows
    /// [LogitCount × vocabulary]), or returns null when no token of the batch needs logits. A device backend samples from
    /// there without copying the logits to the host.
    /// </summary>
    public DeviceTensor? ForwardToLogits(ForwardBatch batch, PagedKvCache cache)
    {
        CheckBatch(batch);
        var b = _backend;
        var eps = Config.RmsNormEpsilon;
        var collectives = _rank?.Collectives;
        b.BeginBatch(batch);
        b.Embed(_weights.TokenEmbedding, _hidden);
        if (_rank is null && batch.TokenCount == 1 && b is CudaBackend cuda && cuda.TryDecodeLayers(_weights.Layers, _hidden, _rope, cache, eps))
        {
            // Every block in one persistent kernel; the final norm as ForwardLayers leaves it.
            b.RmsNorm(_hidden, _weights.OutputNorm, eps, _normed, 1);
        }
        else
        {
            ForwardLayers(batch, cache);
        }

        if (batch.LogitCount == 0)
        {
            return null;
        }

        b.GatherLogitRows(_normed, _logitInput);
        b.MatMul(_logitInput, _weights.Output, _logitShard ?? _logits, batch.LogitCount);
        collectives?.AllGatherColumns(_logitShard!, _logits, batch.LogitCount);
        return _logits;
    }

    /// <summary>Every block of the step a call at a time, from the embedded tokens in <c>_hidden</c> to the final norm in <c>_normed</c> (folded into the last projection where the backend can).</summary>
    private void ForwardLayers(ForwardBatch batch, PagedKvCache cache)
    {
        var tokens = batch.TokenCount;
        var b = _backend;
        var c = Config;
        var eps = c.RmsNormEpsilon;
        b.RmsNorm(_hidden, _weights.Layers[0].AttentionNorm, eps, _normed, tokens);
        for (var l = 0; l < c.LayerCount; l++)
        {
            var w = _weights.Layers[l];
            if (w.QueryBias is null && w.QueryNorm is null)
            {
                b.ProjectQueryKeyValue(_normed, _queryKeyValue[l], tokens, _rope, cache, l);
            }
            else
            {
                b.MatMulGroup(_normed, _queryKeyValue[l], tokens);
                if (w.QueryBias is not null)
                {
                    b.AddBias(_query, w.QueryBias, tokens);
                    b.AddBias(_key, w.KeyBias!, tokens);
                    b.AddBias(_value, w.ValueBias!, tokens);
                }

                b.RopeAndStoreKv(_query, _key, _value, _rope, cache, l, w.QueryNorm is null ? null : new HeadNorms(w.QueryNorm, w.KeyNorm!, eps));
            }

            b.PagedAttention(_query, cache, l, _attention);
            ProjectIntoResidual(_attention, w.AttentionOutput, w.FeedForwardNorm, tokens);
            b.GatedMatMul(_normed, _gateUp[l][0], _gateUp[l][1], _activated, tokens);
            ProjectIntoResidual(_activated, w.Down, l + 1 < c.LayerCount ? _weights.Layers[l + 1].AttentionNorm : _weights.OutputNorm, tokens);
        }
    }

    /// <summary>
    /// hidden += input · weightᵀ, then the next norm into <c>_normed</c>; under tensor parallelism the partial products of the
    /// ranks are summed between the two (each in one call that a device backend may fuse).
    /// </summary>
    private void ProjectIntoResidual(DeviceTensor input, DeviceWeight weight, DeviceWeight nextNorm, int tokens)
    {
        var eps = Config.RmsNormEpsilon;
        if (_rank is null)
        {
            _backend.MatMulAddRmsNorm(input, weight, _projection, _hidden, nextNorm, eps, _normed, tokens);
            return;
        }

        _backend.MatMul(input, weight, _projection, tokens);
        _rank.Collectives.AllReduceAddRmsNorm(_backend, _projection, _hidden, nextNorm, eps, _normed, tokens);
    }

    /// <summary>Throws unless <paramref name="batch"/> fits this model (the step's size, its logit rows, its positions).</summary>
    internal void CheckBatch(ForwardBatch batch)
    {
        var tokens = batch.TokenCount;
        if (tokens == 0 || tokens > MaxBatchTokens)
        {
            throw new ArgumentException($"A step carries 1…{MaxBatchTokens} tokens, not {tokens}.", nameof(batch));
        }

        if (batch.LogitCount > MaxLogitRows)
        {
            throw new ArgumentException($"A step computes at most {MaxLogitRows} logit rows, not {batch.LogitCount}.", nameof(batch));
        }

        if (batch.MaxContextLength > Config.ContextLength)
        {
            throw new ArgumentException($"Position {batch.MaxContextLength - 1} is beyond the model's context of {Config.ContextLength}.", nameof(batch));
        }
    }

    public void Dispose()
    {
        foreach (var tensor in new[] { _hidden, _normed, _query, _key, _value, _attention, _projection, _gate, _up, _activated, _logitInput, _logits })
        {
            tensor.Dispose();
        }

        _logitShard?.Dispose();
        (_backend as CudaBackend)?.ForgetPersistentDecode(_weights.Layers);
        _rope.Dispose();
        _weights.Dispose();
    }
}
