using System.Runtime.InteropServices;
using AspireAi.Inference.Models;

namespace AspireAi.GpuCheck;

/// <summary>
/// Random tensors in ggml block formats: random code bytes (every code pattern) with scales of a realistic magnitude written
/// over each block's fp16 scale fields, as llama.cpp's <c>ggml-common.h</c> lays them out. Never zeros.
/// </summary>
internal static class RandomWeights
{
    public static byte[] Tensor(GgmlType type, int rows, int columns, int seed, double scale = 0.05)
    {
        var random = new Random(seed);
        var blockSize = GgmlTypeInfo.BlockSize(type);
        var blockBytes = GgmlTypeInfo.BlockBytes(type);
        var blocks = (long)rows * (columns / blockSize);
        var data = new byte[blocks * blockBytes];
        switch (type)
        {
            case GgmlType.F32:
            {
                var f = MemoryMarshal.Cast<byte, float>(data.AsSpan());
                for (var i = 0; i < f.Length; i++)
                {
                    f[i] = (float)(Normal(random) * scale);
                }

                return data;
            }

            case GgmlType.F16:
            case GgmlType.BF16:
            {
                var h = MemoryMarshal.Cast<byte, ushort>(data.AsSpan());
                for (var i = 0; i < h.Length; i++)
                {
                    var v = (float)(Normal(random) * scale);
                    h[i] = type == GgmlType.F16 ? BitConverter.HalfToUInt16Bits((Half)v) : (ushort)(BitConverter.SingleToUInt32Bits(v) >> 16);
                }

                return data;
            }
        }

        random.NextBytes(data);
        for (long i = 0; i < blocks; i++)
        {
            var b = data.AsSpan((int)(i * blockBytes), blockBytes);
            Half Positive(double magnitude) => (Half)(magnitude * (0.5 + random.NextDouble()));
            switch (type)
            {
                case GgmlType.Q8_0:
                    BitConverter.TryWriteBytes(b, Positive(scale / 64));
                    break;
                case GgmlType.Q4_0:
                case GgmlType.Q5_0:
                    BitConverter.TryWriteBytes(b, Positive(scale / 8));
                    break;
                case GgmlType.Q4_K:
                case GgmlType.Q5_K:
                    BitConverter.TryWriteBytes(b, Positive(scale / 256));
                    BitConverter.TryWriteBytes(b[2..], Positive(scale / 128));
                    break;
                case GgmlType.Q6_K:
                    BitConverter.TryWriteBytes(b[208..], Positive(scale / 1024));
                    break;
            }
        }

        return data;
    }

    public static float[] Floats(int count, Random random, double scale = 1.0, double offset = 0.0)
    {
        var result = new float[count];
        for (var i = 0; i < count; i++)
        {
            result[i] = (float)(offset + Normal(random) * scale);
        }

        return result;
    }

    public static double Normal(Random random) =>
        Math.Sqrt(-2 * Math.Log(1 - random.NextDouble())) * Math.Cos(2 * Math.PI * random.NextDouble());
}

/// <summary>A tensor held in pinned managed memory, viewed as the engine's <see cref="TensorView"/>.</summary>
internal sealed class HostTensor : IDisposable
{
    private GCHandle _handle;

    public HostTensor(string name, GgmlType type, long[] shape, byte[] data)
    {
        Data = data;
        _handle = GCHandle.Alloc(data, GCHandleType.Pinned);
        View = new TensorView(name, type, shape, _handle.AddrOfPinnedObject(), data.LongLength);
    }

    public byte[] Data { get; }

    public TensorView View { get; }

    public void Dispose()
    {
        if (_handle.IsAllocated)
        {
            _handle.Free();
        }
    }
}

/// <summary>
/// A random-weight model of a real model's shape (<see cref="ModelConfig"/> as its GGUF file would give), every matrix in
/// one type, norms F32 around 1 so activations keep a realistic scale through the layers.
/// </summary>
internal sealed class RandomModel : IModelSource
{
    private readonly Dictionary<string, HostTensor> _tensors = new(StringComparer.Ordinal);

    public RandomModel(string name, ModelConfig config, GgmlType matrixType, int seed)
    {
        Path = $"random:{name}";
        Config = config;
        var c = config;
        var list = new List<(string Name, GgmlType Type, int Rows, int Columns)>();
        int e = c.EmbeddingLength, q = c.HeadCount * c.HeadDim, kv = c.KvHeadCount * c.HeadDim, ff = c.FeedForwardLength;
        list.Add(("token_embd.weight", matrixType, c.VocabularySize, e));
        for (var i = 0; i < c.LayerCount; i++)
        {
            var p = $"blk.{i}.";
            list.Add((p + "attn_norm.weight", GgmlType.F32, 1, e));
            list.Add((p + "attn_q.weight", matrixType, q, e));
            list.Add((p + "attn_k.weight", matrixType, kv, e));
            list.Add((p + "attn_v.weight", matrixType, kv, e));
            if (c.HasQkvBias)
            {
                list.Add((p + "attn_q.bias", GgmlType.F32, 1, q));
                list.Add((p + "attn_k.bias", GgmlType.F32, 1, kv));
                list.Add((p + "attn_v.bias", GgmlType.F32, 1, kv));
            }

            if (c.HasQkNorm)
            {
                list.Add((p + "attn_q_norm.weight", GgmlType.F32, 1, c.HeadDim));
                list.Add((p + "attn_k_norm.weight", GgmlType.F32, 1, c.HeadDim));
            }

            list.Add((p + "attn_output.weight", matrixType, e, q));
            list.Add((p + "ffn_norm.weight", GgmlType.F32, 1, e));
            list.Add((p + "ffn_gate.weight", matrixType, ff, e));
            list.Add((p + "ffn_up.weight", matrixType, ff, e));
            list.Add((p + "ffn_down.weight", matrixType, e, ff));
        }

        list.Add(("output_norm.weight", GgmlType.F32, 1, e));
        if (!c.TiedEmbeddings)
        {
            list.Add(("output.weight", matrixType, c.VocabularySize, e));
        }

        var made = new HostTensor[list.Count];
        Parallel.For(0, list.Count, i =>
        {
            var (name, type, rows, columns) = list[i];
            byte[] data;
            if (rows == 1)
            {
                // Norm weights near 1, biases small: what trained models have.
                var values = RandomWeights.Floats(columns, new Random(seed + i), 0.1, name.EndsWith("bias", StringComparison.Ordinal) ? 0 : 1);
                data = MemoryMarshal.AsBytes(values.AsSpan()).ToArray();
            }
            else
            {
                // 1/√K keeps each matmul's outputs at the scale of its inputs.
                data = RandomWeights.Tensor(type, rows, columns, seed + i, 1.0 / Math.Sqrt(columns));
            }

            made[i] = new HostTensor(name, type, rows == 1 ? [columns] : [columns, rows], data);
        });
        foreach (var t in made)
        {
            _tensors[t.View.Name] = t;
        }
    }

    public string Path { get; }

    public ModelConfig Config { get; }

    /// <summary>Multiplies every value of an F32 tensor by <paramref name="factor"/> (in place; loads after this see it).</summary>
    public void Scale(string name, float factor)
    {
        var values = MemoryMarshal.Cast<byte, float>(_tensors[name].Data.AsSpan());
        for (var i = 0; i < values.Length; i++)
        {
            values[i] *= factor;
        }
    }

    public bool TryGetTensor(string name, out TensorView tensor)
    {
        var found = _tensors.TryGetValue(name, out var t);
        tensor = found ? t!.View : default;
        return found;
    }

    public void Dispose()
    {
        foreach (var t in _tensors.Values)
        {
            t.Dispose();
        }
    }
}

/// <summary>Model shapes from the models' GGUF metadata (hyperparameters as published on their model cards).</summary>
internal static class ModelShapes
{
    public static ModelConfig Llama32_1B(int context) => new()
    {
        Architecture = ModelArchitecture.Llama, EmbeddingLength = 2048, LayerCount = 16, HeadCount = 32, KvHeadCount = 8, HeadDim = 64,
        FeedForwardLength = 8192, VocabularySize = 128256, ContextLength = context, RmsNormEpsilon = 1e-5f, RopeTheta = 500000f,
        RopeScaling = new Llama3RopeScaling(32, 1, 4, 8192), TiedEmbeddings = true,
    };

    public static ModelConfig Qwen3_06B(int context) => new()
    {
        Architecture = ModelArchitecture.Qwen3, EmbeddingLength = 1024, LayerCount = 28, HeadCount = 16, KvHeadCount = 8, HeadDim = 128,
        FeedForwardLength = 3072, VocabularySize = 151936, ContextLength = context, RmsNormEpsilon = 1e-6f, RopeTheta = 1000000f,
        RopeStyle = RopeStyle.NeoX, TiedEmbeddings = true, HasQkNorm = true,
    };

    public static ModelConfig Llama3_8B(int context) => new()
    {
        Architecture = ModelArchitecture.Llama, EmbeddingLength = 4096, LayerCount = 32, HeadCount = 32, KvHeadCount = 8, HeadDim = 128,
        FeedForwardLength = 14336, VocabularySize = 128256, ContextLength = context, RmsNormEpsilon = 1e-5f, RopeTheta = 500000f,
    };

    public static ModelConfig Qwen2_05B(int context) => new()
    {
        Architecture = ModelArchitecture.Qwen2, EmbeddingLength = 896, LayerCount = 24, HeadCount = 14, KvHeadCount = 2, HeadDim = 64,
        FeedForwardLength = 4864, VocabularySize = 151936, ContextLength = context, RmsNormEpsilon = 1e-6f, RopeTheta = 1000000f,
        RopeStyle = RopeStyle.NeoX, TiedEmbeddings = true, HasQkvBias = true,
    };
}
