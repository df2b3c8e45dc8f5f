using System.Runtime.InteropServices;
using AspireAi.Inference.Tokenization;

namespace AspireAi.Inference.Models.Synthetic;

/// <summary>
/// A random-weight model of a real model's shape (<see cref="ModelConfig"/> as its GGUF file would give), every matrix in
/// one type, norms F32 around 1 so activations keep a realistic scale through the layers.
/// </summary>
public sealed class RandomModel : IModelSource
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

    /// <summary>The prefix of a model reference that names a random-weight model: <c>random:SHAPE[:TYPE[:CONTEXT]]</c>.</summary>
    public const string Prefix = "random:";

    /// <summary>
    /// A random-weight model from <c>random:SHAPE[:TYPE[:CONTEXT]]</c> (<c>random:llama3-8b:q4_0</c>): the shape by name (see
    /// <see cref="ModelShapes.ByName"/>), every matrix in TYPE (default q8_0; f32, f16, bf16, q8_0, q5_0, q4_0, q4_k, q5_k,
    /// q6_k), the context in tokens (default 4096). For benchmarks of exact shapes without the files; its tokenizer is
    /// <see cref="SyntheticVocabulary"/>'s (vLLM's <c>--load-format dummy</c> keeps the model's own, which a random model lacks).
    /// </summary>
    /// <exception cref="ModelFormatException">An unknown shape or type, or a context that is not a positive number.</exception>
    public static RandomModel FromReference(string reference)
    {
        var parts = reference[Prefix.Length..].Split(':');
        if (parts.Length is < 1 or > 3 || !ModelShapes.ByName.TryGetValue(parts[0], out var shape))
        {
            throw new ModelFormatException(reference, null, $"expected random:SHAPE[:TYPE[:CONTEXT]] with SHAPE one of {string.Join(", ", ModelShapes.ByName.Keys)}.");
        }

        var type = GgmlType.Q8_0;
        if (parts.Length > 1 && !TryParseType(parts[1], out type))
        {
            throw new ModelFormatException(reference, null, $"unknown tensor type '{parts[1]}' ({TypeNames}).");
        }

        var context = 4096;
        if (parts.Length > 2 && !(int.TryParse(parts[2], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out context) && context > 0))
        {
            throw new ModelFormatException(reference, null, $"the context '{parts[2]}' is not a positive number of tokens.");
        }

        return new RandomModel(parts[0].ToLowerInvariant(), shape(context), type, 20261126);
    }

    /// <summary>
    /// A SentencePiece vocabulary of the model's size for serving a random model (<c>serve</c>, <c>bench-serve</c>):
    /// <c>&lt;unk&gt;</c>, <c>&lt;s&gt;</c>, <c>&lt;/s&gt;</c>, the 256 byte pieces <c>&lt;0x00&gt;</c>… (every text encodes, by
    /// byte fallback), then <c>▁w3</c>, <c>▁w4</c>… for the rest, so each id decodes to a distinct word.
    /// </summary>
    public Vocabulary SyntheticVocabulary()
    {
        var size = Config.VocabularySize;
        var pieces = new string[size];
        var kinds = new TokenKind[size];
        for (var i = 0; i < size; i++)
        {
            (pieces[i], kinds[i]) = i switch
            {
                0 => ("<unk>", TokenKind.Unknown),
                1 => ("<s>", TokenKind.Control),
                2 => ("</s>", TokenKind.Control),
                < 3 + 256 => ($"<0x{i - 3:X2}>", TokenKind.Byte),
                _ => ($"\u2581w{i}", TokenKind.Normal),
            };
        }

        return new Vocabulary(pieces, null, kinds) { UnknownId = 0, BosId = 1, EosId = 2 };
    }

    /// <summary>The engine's tensor types by their names (<c>q8_0</c> is <see cref="GgmlType.Q8_0"/>), case aside.</summary>
    private static bool TryParseType(string name, out GgmlType type)
    {
        var match = Enum.GetValues<GgmlType>().Where(t => t.ToString().Equals(name, StringComparison.OrdinalIgnoreCase)).ToArray();
        type = match.FirstOrDefault();
        return match.Length == 1;
    }

    private static string TypeNames => string.Join(", ", Enum.GetNames<GgmlType>().Select(n => n.ToLowerInvariant()));

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
