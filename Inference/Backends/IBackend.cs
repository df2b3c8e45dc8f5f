using AspireAi.Inference.Models;

namespace AspireAi.Inference.Backends;

/// <summary>
/// The narrow seam the forward pass is written over once. A backend owns every buffer the forward pass touches (weights,
/// activations, the paged KV cache); the forward pass only sequences operations on those handles, so the same model code
/// drives the CPU backend and a device backend whose buffers live in GPU memory.
/// </summary>
/// <remarks>
/// A step works on a <see cref="ForwardBatch"/>: a flat list of tokens, each with its position, its sequence and the KV-cache
/// slot its key/value go to (vLLM's slot mapping), plus one block table per sequence. Mixed prefill and decode sequences
/// therefore share one step. <see cref="BeginBatch"/> hands the backend that metadata once per step (a device backend
/// uploads it there); the operations that need it (embedding, RoPE + KV write, attention, logit-row gather) read it from
/// the current batch. Operations on plain activations take the number of rows explicitly.
/// Activations are float32 matrices [rows × columns], row-major. Weights are [N × K] in ggml order (K contiguous).
/// </remarks>
public interface IBackend : IDisposable
{
    /// <summary>What runs, for logs and benchmarks (for example "cpu avx512, 2 threads").</summary>
    string Description { get; }

    /// <summary>
    /// Bytes this backend can still allocate (host RAM for the CPU, device memory for a GPU): the serving engine sizes its
    /// KV cache from it once the weights are loaded.
    /// </summary>
    long AvailableMemoryBytes();

    /// <summary>
    /// The share of <see cref="AvailableMemoryBytes"/> the serving engine gives its KV cache unless told otherwise
    /// (<c>--kv-cache-fraction</c>): a fifth of free RAM on the CPU, which the host's other processes share.
    /// </summary>
    double DefaultKvCacheFraction => 0.2;

    /// <summary>
    /// The KV cache element type this backend stores when asked for <paramref name="requested"/> (<c>--kv-cache-dtype</c>):
    /// <see cref="KvCacheDtype.Auto"/> becomes the backend's own choice; a type it cannot store throws, naming the flag. The
    /// default is the CPU backend's: float32 only. Its attention reads keys and values straight into SIMD registers as float32
    /// (AttentionJob); an f16 cache would add a conversion to that loop for a tier that serves development and tests, and
    /// silently keeping float32 when f16 was asked for would size the cache for the wrong element size, so fp16 is refused.
    /// </summary>
    KvCacheDtype ResolveKvCacheDtype(KvCacheDtype requested) => requested switch
    {
        KvCacheDtype.Auto or KvCacheDtype.Float32 => KvCacheDtype.Float32,
        _ => throw new ArgumentException(
            $"Inference:KvCacheDtype (--kv-cache-dtype) {requested.Name()} is not supported here: this backend ({Description}) keeps a float32 KV cache (use auto or fp32; fp16 needs --device cuda)."),
    };

    /// <summary>Uploads a weight once. Quantized tensors stay quantized (a backend may rearrange blocks, losslessly).</summary>
    DeviceWeight LoadWeight(TensorView tensor);

    /// <summary>A float32 activation buffer with room for <paramref name="rows"/> rows of <paramref name="columns"/>.</summary>
    DeviceTensor CreateTensor(int rows, int columns);

    /// <summary>
    /// Allocates the paged key/value storage of every layer (see <see cref="KvCacheShape"/> for the layout), of the element
    /// type <see cref="ResolveKvCacheDtype"/> gives for the shape's; the cache's <see cref="PagedKvCache.Shape"/> holds it.
    /// </summary>
    PagedKvCache CreateKvCache(KvCacheShape shape);

    /// <summary>
    /// Allocates host memory for <paramref name="slots"/> KV blocks of <paramref name="shape"/>'s geometry: the offload tier
    /// (page-locked on a GPU, so that copies are asynchronous).
    /// </summary>
    KvOffloadStore CreateKvOffloadStore(KvCacheShape shape, int slots);

    /// <summary>
    /// Copies block <paramref name="block"/> of every layer's keys and values into <paramref name="slot"/> of
    /// <paramref name="store"/>. Ordered like every operation: after the work issued before it (the block's last writes) and
    /// before the work issued after it (a step that reuses the block), so a device backend queues it on its stream.
    /// </summary>
    void CopyKvBlockToHost(PagedKvCache cache, int block, KvOffloadStore store, int slot);

    /// <summary>
    /// Copies <paramref name="slot"/> of <paramref name="store"/> into block <paramref name="block"/> of every layer, ordered
    /// before the work issued after it (the attention that reads the block).
    /// </summary>
    void CopyKvBlockFromHost(KvOffloadStore store, int slot, PagedKvCache cache, int block);

    /// <summary>Precomputes rotary-embedding angles (with Llama-3 scaling when given) for positions below the limit.</summary>
    RotaryEmbedding CreateRotaryEmbedding(RopeSpec spec);

    /// <summary>Makes <paramref name="batch"/> the current step's metadata. The batch must not change until the next call.</summary>
    void BeginBatch(ForwardBatch batch);

    /// <summary>output[t] = row <c>batch.TokenIds[t]</c> of <paramref name="table"/>, for every token of the batch.</summary>
    void Embed(DeviceWeight table, DeviceTensor output);

    /// <summary>
    /// RMSNorm of each row times <paramref name="weight"/>. When the weight is shorter than a row (Qwen3's per-head q/k norm),
    /// each consecutive group of <c>weight.Columns</c> values is normalised on its own.
    /// </summary>
    void RmsNorm(DeviceTensor input, DeviceWeight weight, float epsilon, DeviceTensor output, int rows);

    /// <summary>residual += delta, then output = RMSNorm(residual) · weight (the pre-norm transformer's residual step, fused).</summary>
    void AddRmsNorm(DeviceTensor residual, DeviceTensor delta, DeviceWeight weight, float epsilon, DeviceTensor output, int rows);

    /// <summary>output[rows × N] = input[rows × K] · weightᵀ for a weight [N × K] of any supported type.</summary>
    void MatMul(DeviceTensor input, DeviceWeight weight, DeviceTensor output, int rows);

    /// <summary>
    /// residual += input · weightᵀ, then output = RMSNorm(residual) · norm: a pre-norm block's projection back into the
    /// residual stream and the next block's norm. By default <see cref="MatMul"/> into <paramref name="product"/> (scratch)
    /// and <see cref="AddRmsNorm"/>. A device backend may fold the norm into the matmuls around it, leaving
    /// <paramref name="output"/> to be finished by the matmul that reads it (its values are then computed on any other read).
    /// </summary>
    void MatMulAddRmsNorm(DeviceTensor input, DeviceWeight weight, DeviceTensor product, DeviceTensor residual, DeviceWeight norm, float epsilon,
        DeviceTensor output, int rows)
    {
        MatMul(input, weight, product, rows);
        AddRmsNorm(residual, product, norm, epsilon, output, rows);
    }

    /// <summary>
    /// output = input · weightᵀ for each target, all reading the same input (q/k/v; gate/up). A device backend runs a group
    /// as one launch where the weights' layouts allow: in a memory-bound decode step each launch costs its own ramp-up and
    /// tail, which the small k/v projections do not hide.
    /// </summary>
    void MatMulGroup(DeviceTensor input, ReadOnlySpan<MatMulTarget> targets, int rows)
    {
        foreach (var target in targets)
        {
            MatMul(input, target.Weight, target.Output, rows);
        }
    }

    /// <summary>tensor[r] += bias for each of the first <paramref name="rows"/> rows.</summary>
    void AddBias(DeviceTensor tensor, DeviceWeight bias, int rows);

    /// <summary>
    /// Rotates every head of <paramref name="query"/> (in place) and of <paramref name="key"/> by each token's position, then
    /// writes the rotated key and the value of each token into <paramref name="cache"/> at the token's slot for
    /// <paramref name="layer"/>. With <paramref name="norms"/> (Qwen3) each query and key head is first RMS-normalised in
    /// place, as <see cref="RmsNorm"/> with a weight one head wide does.
    /// </summary>
    void RopeAndStoreKv(DeviceTensor query, DeviceTensor key, DeviceTensor value, RotaryEmbedding rope, PagedKvCache cache, int layer, HeadNorms? norms);

    /// <summary>
    /// The attention's inputs of a layer without biases or per-head norms: q, k, v = input · weightᵀ (the three targets, as
    /// <see cref="MatMulGroup"/>), then <see cref="RopeAndStoreKv"/> on them. A device backend may rotate and store in the
    /// projections' own launch.
    /// </summary>
    void ProjectQueryKeyValue(DeviceTensor input, ReadOnlySpan<MatMulTarget> targets, int rows, RotaryEmbedding rope, PagedKvCache cache, int layer)
    {
        MatMulGroup(input, targets, rows);
        RopeAndStoreKv(targets[0].Output, targets[1].Output, targets[2].Output, rope, cache, layer, null);
    }

    /// <summary>
    /// Causal attention of every batch token over its own sequence's cached keys/values at positions 0…its position, read
    /// through the sequence's block table; grouped-query heads share a KV head. Scale 1/√headDim.
    /// </summary>
    void PagedAttention(DeviceTensor query, PagedKvCache cache, int layer, DeviceTensor output);

    /// <summary>output = SiLU(gate) · up, element-wise.</summary>
    void SiluMul(DeviceTensor gate, DeviceTensor up, DeviceTensor output, int rows);

    /// <summary>
    /// output = SiLU(input · gateᵀ) · (input · upᵀ), the gated feed-forward's first half; the targets' outputs are scratch
    /// that may be left unwritten. By default the two products (as a group) and then <see cref="SiluMul"/>; a device backend
    /// fuses them where it can, so that the products never reach memory.
    /// </summary>
    void GatedMatMul(DeviceTensor input, MatMulTarget gate, MatMulTarget up, DeviceTensor output, int rows)
    {
        MatMulGroup(input, [gate, up], rows);
        SiluMul(gate.Output, up.Output, output, rows);
    }

    /// <summary>output[i] = input[<c>batch.LogitTokenIndices[i]</c>]: the rows whose logits the step needs.</summary>
    void GatherLogitRows(DeviceTensor input, DeviceTensor output);

    /// <summary>Copies host rows into <paramref name="tensor"/> from its first row on (inputs computed elsewhere; tests).</summary>
    void WriteRows(DeviceTensor tensor, ReadOnlySpan<float> source);

    /// <summary>Copies the first <paramref name="rows"/> rows to host memory (logits for the sampler).</summary>
    void ReadRows(DeviceTensor tensor, int rows, Span<float> destination);
}

/// <summary>The per-head RMS norms of queries and keys (Qwen3's q_norm and k_norm: weights one head wide) and their epsilon.</summary>
public readonly record struct HeadNorms(DeviceWeight Query, DeviceWeight Key, float Epsilon);
