using AspireAi.Inference.Backends.Sampling;
using AspireAi.Inference.Models;

namespace AspireAi.Inference.Backends.Cpu;

/// <summary>
/// The SIMD CPU backend: weights repacked once (<see cref="WeightRepacker"/>), activations quantized to int8 blocks once per
/// value for the integer kernels, and every operation split across a persistent <see cref="WorkerPool"/>. Jobs are allocated
/// once and refilled per call, so a step allocates nothing.
/// </summary>
public sealed unsafe class CpuBackend : IBackend, IDeviceSampler
{
    // Below this many rows an element-wise operation runs on the calling thread: a decode step's norms and RoPE take well
    // under a microsecond, less than waking the pool.
    private const int ParallelRowThreshold = 4;

    private readonly WorkerPool _pool;
    private readonly MatMulJob _matMul = new();
    private readonly QuantizeJob _quantize = new();
    private readonly RmsNormJob _norm = new();
    private readonly SiluMulJob _siluMul = new();
    private readonly AddBiasJob _bias = new();
    private readonly EmbedJob _embed = new();
    private readonly RopeKvJob _ropeKv = new();
    private readonly AttentionJob _attention = new();
    private ForwardBatch? _batch;
    private TokenChooser? _chooser;
    private float[] _penalized = [];

    public CpuBackend(int threads = 0, SimdLevel? level = null)
    {
        Level = level ?? SimdLevels.Best;
        if (!SimdLevels.IsSupported(Level))
        {
            throw new PlatformNotSupportedException($"This CPU does not support {Level} (best: {SimdLevels.Best}).");
        }

        Threads = threads > 0 ? threads : Environment.ProcessorCount;
        _pool = new WorkerPool(Threads);
        _attention.Scores = new float[Threads][];
        for (var i = 0; i < Threads; i++)
        {
            _attention.Scores[i] = [];
        }
    }

    public SimdLevel Level { get; }

    public int Threads { get; }

    public string Description => $"cpu {Level.ToString().ToLowerInvariant()}, {Threads} thread{(Threads == 1 ? "" : "s")}";

    public long AvailableMemoryBytes() => HostMemory.AvailableBytes();

    public DeviceWeight LoadWeight(TensorView tensor) => WeightRepacker.Load(tensor);

    public DeviceTensor CreateTensor(int rows, int columns) => new CpuTensor(rows, columns);

    /// <summary>
    /// Float32 unless bf16 or fp8 is asked for (half or a quarter of the bytes that decode at long contexts reads, and as
    /// many times the tokens); f16 is refused.
    /// </summary>
    public KvCacheDtype ResolveKvCacheDtype(KvCacheDtype requested) => requested switch
    {
        KvCacheDtype.Auto or KvCacheDtype.Float32 => KvCacheDtype.Float32,
        KvCacheDtype.BFloat16 or KvCacheDtype.Float8E4M3 => requested,
        _ => throw new ArgumentException(
            $"Inference:KvCacheDtype (--kv-cache-dtype) {requested.Name()} is not supported here: this backend ({Description}) keeps a float32, bf16 or fp8 KV cache (use auto, fp32, bf16 or fp8; fp16 needs --device cuda)."),
    };

    public PagedKvCache CreateKvCache(KvCacheShape shape)
    {
        var cache = new CpuKvCache(shape with { Dtype = ResolveKvCacheDtype(shape.Dtype) });
        var longest = (int)Math.Min(shape.SlotCount, int.MaxValue);
        for (var i = 0; i < Threads; i++)
        {
            if (_attention.Scores[i].Length < longest)
            {
                _attention.Scores[i] = new float[longest];
            }
        }

        return cache;
    }

    public KvOffloadStore CreateKvOffloadStore(KvCacheShape shape, int slots) =>
        new CpuKvOffloadStore(shape with { Dtype = ResolveKvCacheDtype(shape.Dtype) }, slots);

    // Operations run synchronously on the calling thread, so a copy is ordered with the steps around it.
    public void CopyKvBlockToHost(PagedKvCache cache, int block, KvOffloadStore store, int slot) =>
        ((CpuKvOffloadStore)store).Copy((CpuKvCache)cache, block, slot, toHost: true);

    public void CopyKvBlockFromHost(KvOffloadStore store, int slot, PagedKvCache cache, int block) =>
        ((CpuKvOffloadStore)store).Copy((CpuKvCache)cache, block, slot, toHost: false);

    public RotaryEmbedding CreateRotaryEmbedding(RopeSpec spec) => new CpuRotaryEmbedding(spec);

    public void BeginBatch(ForwardBatch batch) => _batch = batch;

    private ForwardBatch Batch => _batch ?? throw new InvalidOperationException("Call BeginBatch before batch operations.");

    public void Embed(DeviceWeight table, DeviceTensor output)
    {
        var t = (CpuWeight)table;
        var batch = Batch;
        foreach (var id in batch.TokenIds)
        {
            if ((uint)id >= (uint)t.Rows)
            {
                throw new ArgumentOutOfRangeException(nameof(table), id, $"Token id {id} is outside the vocabulary of {t.Rows}.");
            }
        }

        _embed.Table = t;
        _embed.Output = Written(output);
        _embed.Batch = batch;
        RunRows(_embed, batch.TokenCount);
    }

    public void RmsNorm(DeviceTensor input, DeviceWeight weight, float epsilon, DeviceTensor output, int rows) =>
        Norm((CpuTensor)input, null, weight, epsilon, output, rows);

    public void AddRmsNorm(DeviceTensor residual, DeviceTensor delta, DeviceWeight weight, float epsilon, DeviceTensor output, int rows)
    {
        Written(residual);
        Norm((CpuTensor)residual, (CpuTensor)delta, weight, epsilon, output, rows);
    }

    private void Norm(CpuTensor input, CpuTensor? delta, DeviceWeight weight, float epsilon, DeviceTensor output, int rows)
    {
        var w = (CpuWeight)weight;
        if (input.Columns % w.Columns != 0 || w.Layout != CpuWeightLayout.Float32 || w.Rows != 1)
        {
            throw new ArgumentException($"Norm weight '{w.Name}' ({w.Columns}) does not divide rows of {input.Columns}.", nameof(weight));
        }

        _norm.Input = input;
        _norm.Delta = delta;
        _norm.Weight = w;
        _norm.Epsilon = epsilon;
        _norm.Output = Written(output);
        RunRows(_norm, rows);
    }

    public void MatMul(DeviceTensor input, DeviceWeight weight, DeviceTensor output, int rows)
    {
        var x = (CpuTensor)input;
        var w = (CpuWeight)weight;
        if (x.Columns != w.Columns || output.Columns != w.Rows)
        {
            throw new ArgumentException($"MatMul '{w.Name}': input [{rows} × {x.Columns}] · weight [{w.Rows} × {w.Columns}]ᵀ into [{output.Rows} × {output.Columns}].");
        }

        if (w.IsQuantized)
        {
            EnsureQuantized(x, rows);
        }

        _matMul.Weight = w;
        _matMul.Input = x;
        _matMul.Output = Written(output);
        _matMul.Tokens = rows;
        _matMul.Level = Level;
        _pool.Run(_matMul);
    }

    private void EnsureQuantized(CpuTensor x, int rows)
    {
        var q = x.Quantized;
        if (q.SourceVersion == x.Version && q.SourceRows >= rows)
        {
            return;
        }

        _quantize.Input = x;
        _quantize.Level = Level;
        RunRows(_quantize, rows);
        q.SourceVersion = x.Version;
        q.SourceRows = rows;
    }

    public void AddBias(DeviceTensor tensor, DeviceWeight bias, int rows)
    {
        _bias.Tensor = Written(tensor);
        _bias.Bias = (CpuWeight)bias;
        RunRows(_bias, rows);
    }

    public void RopeAndStoreKv(DeviceTensor query, DeviceTensor key, DeviceTensor value, RotaryEmbedding rope, PagedKvCache cache, int layer, HeadNorms? norms)
    {
        var batch = Batch;
        var kv = (CpuKvCache)cache;
        foreach (var slot in batch.Slots)
        {
            if (slot >= kv.Shape.SlotCount)
            {
                throw new ArgumentOutOfRangeException(nameof(cache), slot, $"Slot {slot} is outside the KV cache of {kv.Shape.SlotCount} slots.");
            }
        }

        if (norms is { } n)
        {
            RmsNorm(query, n.Query, n.Epsilon, query, batch.TokenCount);
            RmsNorm(key, n.Key, n.Epsilon, key, batch.TokenCount);
        }

        _ropeKv.Query = Written(query);
        _ropeKv.Key = Written(key);
        _ropeKv.Value = (CpuTensor)value;
        _ropeKv.Rope = (CpuRotaryEmbedding)rope;
        _ropeKv.Cache = kv;
        _ropeKv.Layer = layer;
        _ropeKv.Batch = batch;
        RunRows(_ropeKv, batch.TokenCount);
    }

    public void PagedAttention(DeviceTensor query, PagedKvCache cache, int layer, DeviceTensor output)
    {
        var batch = Batch;
        var kv = (CpuKvCache)cache;
        if (batch.MaxContextLength > _attention.Scores[0].Length)
        {
            throw new InvalidOperationException($"A context of {batch.MaxContextLength} positions exceeds the KV cache of {kv.Shape.SlotCount} slots.");
        }

        _attention.Query = (CpuTensor)query;
        _attention.Output = Written(output);
        _attention.Cache = kv;
        _attention.Layer = layer;
        _attention.Batch = batch;
        _attention.Prepare();
        _pool.Run(_attention);
    }

    public void SiluMul(DeviceTensor gate, DeviceTensor up, DeviceTensor output, int rows)
    {
        _siluMul.Gate = (CpuTensor)gate;
        _siluMul.Up = (CpuTensor)up;
        _siluMul.Output = Written(output);
        RunRows(_siluMul, rows);
    }

    public void GatherLogitRows(DeviceTensor input, DeviceTensor output)
    {
        var x = (CpuTensor)input;
        var y = Written(output);
        var rows = Batch.LogitTokenIndices;
        var bytes = (long)x.Columns * sizeof(float);
        for (var i = 0; i < rows.Length; i++)
        {
            Buffer.MemoryCopy(x.Row(rows[i]), y.Row(i), bytes, bytes);
        }
    }

    public void WriteRows(DeviceTensor tensor, ReadOnlySpan<float> source)
    {
        var x = Written(tensor);
        if (source.Length > (long)x.Rows * x.Columns)
        {
            throw new ArgumentException($"{source.Length} values do not fit a tensor of {x.Rows} × {x.Columns}.", nameof(source));
        }

        source.CopyTo(new Span<float>(x.Data, source.Length));
    }

    public void ReadRows(DeviceTensor tensor, int rows, Span<float> destination)
    {
        var x = (CpuTensor)tensor;
        new ReadOnlySpan<float>(x.Data, rows * x.Columns).CopyTo(destination);
    }

    /// <summary>
    /// Rows are read in place (the engine skips copying rows × vocabulary floats out); a row with penalties is copied first.
    /// The reference for sampling.cu: the same <see cref="TokenChooser"/> the host sampler uses.
    /// </summary>
    public void Sample(DeviceTensor logits, ReadOnlySpan<SamplingRow> rows, ReadOnlySpan<TokenPenalty> penalties, Span<int> ids)
    {
        SamplingRow.Validate(logits, rows, penalties, ids);
        var x = (CpuTensor)logits;
        if (_chooser is null || _penalized.Length != x.Columns)
        {
            _chooser = new TokenChooser(x.Columns);
            _penalized = new float[x.Columns];
        }

        for (var r = 0; r < rows.Length; r++)
        {
            ReadOnlySpan<float> row = new(x.Row(r), x.Columns);
            if (rows[r].PenaltyCount > 0)
            {
                row.CopyTo(_penalized);
                TokenChooser.ApplyPenalties(_penalized, penalties, rows[r]);
                row = _penalized;
            }

            ids[r] = _chooser.Choose(row, rows[r]);
        }
    }

    private void RunRows(RowJob job, int rows)
    {
        job.Rows = rows;
        if (rows < ParallelRowThreshold)
        {
            job.Execute(0, 1);
        }
        else
        {
            _pool.Run(job);
        }
    }

    private static CpuTensor Written(DeviceTensor tensor)
    {
        var t = (CpuTensor)tensor;
        t.MarkWritten();
        return t;
    }

    public void Dispose() => _pool.Dispose();
}
