using AspireAi.Inference.Backends;
using AspireAi.Inference.TensorParallel;

namespace AspireAi.Inference.Models;

/// <summary>One transformer block's weights on the backend (GGUF names <c>blk.N.*</c>).</summary>
public sealed record LayerWeights(
    DeviceWeight AttentionNorm,
    DeviceWeight Query,
    DeviceWeight Key,
    DeviceWeight Value,
    DeviceWeight AttentionOutput,
    DeviceWeight FeedForwardNorm,
    DeviceWeight Gate,
    DeviceWeight Up,
    DeviceWeight Down,
    DeviceWeight? QueryBias,
    DeviceWeight? KeyBias,
    DeviceWeight? ValueBias,
    DeviceWeight? QueryNorm,
    DeviceWeight? KeyNorm);

/// <summary>
/// Every weight of a llama / qwen2 / qwen3 model, uploaded to the backend once, each checked against the configuration so a
/// wrong file fails at load with the tensor named rather than as garbage text.
/// </summary>
public sealed class LlamaWeights : IDisposable
{
    private readonly List<DeviceWeight> _all = [];

    private LlamaWeights(DeviceWeight embedding, DeviceWeight outputNorm, DeviceWeight output, LayerWeights[] layers, List<DeviceWeight> all)
    {
        TokenEmbedding = embedding;
        OutputNorm = outputNorm;
        Output = output;
        Layers = layers;
        _all = all;
    }

    public DeviceWeight TokenEmbedding { get; }

    public DeviceWeight OutputNorm { get; }

    /// <summary>The logits projection: <c>output.weight</c>, or the token embedding when tied.</summary>
    public DeviceWeight Output { get; }

    public IReadOnlyList<LayerWeights> Layers { get; }

    /// <summary>Bytes of weights one decode step reads (every weight once; a tied embedding counted once, as the logits matrix).</summary>
    public long BytesPerStep => _all.Where(w => !ReferenceEquals(w, TokenEmbedding) || ReferenceEquals(w, Output)).Sum(w => w.ByteSize);

    /// <param name="rank">Under tensor parallelism, the rank whose part of each weight to load (shapes are checked against
    /// the whole model first); null loads every weight whole.</param>
    public static LlamaWeights Load(IModelSource source, IBackend backend, IProgress<(int Done, int Total)>? progress = null, TensorParallelRank? rank = null)
    {
        var c = source.Config;
        var all = new List<DeviceWeight>();
        var perLayer = 9 + (c.HasQkvBias ? 3 : 0) + (c.HasQkNorm ? 2 : 0);
        var hasOutput = source.TryGetTensor("output.weight", out _);
        // A tied embedding is loaded twice under tensor parallelism: whole for the lookup, a vocabulary shard for the logits.
        var total = 2 + (hasOutput || rank is not null ? 1 : 0) + c.LayerCount * perLayer;
        var done = 0;

        DeviceWeight Load(string name, int rows, int columns, string? role = null)
        {
            if (!source.TryGetTensor(name, out var tensor))
            {
                throw new InvalidDataException($"{source.Path}: tensor '{name}' is missing.");
            }

            var actualColumns = tensor.Shape.Length > 0 ? tensor.Shape[0] : 0;
            var actualRows = tensor.Shape.Length > 1 ? tensor.Shape[1] : 1;
            if (actualColumns != columns || actualRows != rows || tensor.Shape.Length > 2)
            {
                throw new InvalidDataException(
                    $"{source.Path}: tensor '{name}' has shape [{string.Join(", ", tensor.Shape)}], expected [{columns}{(rows == 1 ? "" : $", {rows}")}].");
            }

            var weight = rank is null ? backend.LoadWeight(tensor) : rank.LoadWeight(backend, tensor, role ?? name);
            all.Add(weight);
            progress?.Report((++done, total));
            return weight;
        }

        var dim = c.EmbeddingLength;
        var qDim = c.HeadCount * c.HeadDim;
        var kvDim = c.KvHeadCount * c.HeadDim;
        var ffn = c.FeedForwardLength;
        var embedding = Load("token_embd.weight", c.VocabularySize, dim);
        var layers = new LayerWeights[c.LayerCount];
        for (var i = 0; i < c.LayerCount; i++)
        {
            var p = $"blk.{i}.";
            layers[i] = new LayerWeights(
                AttentionNorm: Load(p + "attn_norm.weight", 1, dim),
                Query: Load(p + "attn_q.weight", qDim, dim),
                Key: Load(p + "attn_k.weight", kvDim, dim),
                Value: Load(p + "attn_v.weight", kvDim, dim),
                AttentionOutput: Load(p + "attn_output.weight", dim, qDim),
                FeedForwardNorm: Load(p + "ffn_norm.weight", 1, dim),
                Gate: Load(p + "ffn_gate.weight", ffn, dim),
                Up: Load(p + "ffn_up.weight", ffn, dim),
                Down: Load(p + "ffn_down.weight", dim, ffn),
                QueryBias: c.HasQkvBias ? Load(p + "attn_q.bias", 1, qDim) : null,
                KeyBias: c.HasQkvBias ? Load(p + "attn_k.bias", 1, kvDim) : null,
                ValueBias: c.HasQkvBias ? Load(p + "attn_v.bias", 1, kvDim) : null,
                QueryNorm: c.HasQkNorm ? Load(p + "attn_q_norm.weight", 1, c.HeadDim) : null,
                KeyNorm: c.HasQkNorm ? Load(p + "attn_k_norm.weight", 1, c.HeadDim) : null);
        }

        var outputNorm = Load("output_norm.weight", 1, dim);
        var output = hasOutput ? Load("output.weight", c.VocabularySize, dim)
            : rank is null ? embedding
            : Load("token_embd.weight", c.VocabularySize, dim, role: "output.weight");
        return new LlamaWeights(embedding, outputNorm, output, layers, all);
    }

    public void Dispose()
    {
        foreach (var weight in _all)
        {
            weight.Dispose();
        }
    }
}
