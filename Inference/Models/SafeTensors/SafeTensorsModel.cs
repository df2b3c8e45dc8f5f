using System.Buffers;
using System.Buffers.Binary;
using System.Runtime.InteropServices;
using AspireAi.Inference.Models.Quantization;

namespace AspireAi.Inference.Models.SafeTensors;

/// <summary>
/// A Hugging Face model folder (<c>config.json</c> + <c>*.safetensors</c>, sharded or not) as an <see cref="IModelSource"/>
/// with GGUF tensor names and layouts, so the forward pass cannot tell it from a GGUF file:
/// <list type="bullet">
/// <item>names mapped as llama.cpp's converter maps them, shapes reversed to ggml order (row length first);</item>
/// <item>llama's q/k rows permuted from Hugging Face's rotate-halves layout to GGUF's adjacent pairs
/// (<see cref="RopePermutation"/>); qwen2/qwen3 stay as they are (NeoX RoPE in GGUF too);</item>
/// <item>1-D tensors (norms, biases) as F32, as llama.cpp writes them;</item>
/// <item>with <c>quantize</c>, every matrix whose rows are a multiple of 32 as Q8_0 or Q4_0 (llama.cpp's reference
/// quantizers); with Q4_0 the logits matrix stays Q8_0, as <c>llama-quantize</c> keeps it at higher precision.</item>
/// </list>
/// Tensors that need none of this are views into the mapped files; the others are converted on first request into
/// memory this model owns and frees on <see cref="Dispose"/>. Every tensor the architecture needs is checked (presence,
/// shape, no strays) when the folder is opened.
/// </summary>
public sealed unsafe class SafeTensorsModel : IModelSource
{
    // Converted buffers are aligned for the widest SIMD loads (AVX-512: 64 bytes).
    private const int BufferAlignment = 64;

    private readonly SafeTensorsShards _shards;
    private readonly Dictionary<string, (SafeTensorsFile File, SafeTensorInfo Info)> _sources;
    private readonly Dictionary<string, TensorView> _views = new(StringComparer.Ordinal);
    private readonly List<nint> _owned = [];
    private readonly Lock _lock = new();
    private bool _disposed;

    private SafeTensorsModel(string folder, ModelConfig config, GgmlType? quantize, SafeTensorsShards shards,
        Dictionary<string, (SafeTensorsFile, SafeTensorInfo)> sources)
    {
        Path = folder;
        Config = config;
        Quantization = quantize;
        _shards = shards;
        _sources = sources;
    }

    /// <summary>Opens and validates a Hugging Face model folder.</summary>
    /// <param name="folder">Holds <c>config.json</c> and <c>model.safetensors</c> or <c>model.safetensors.index.json</c> with its shards.</param>
    /// <param name="quantize">Q8_0 or Q4_0 to quantize the matrices on load; null keeps the checkpoint's BF16/F16/F32.</param>
    /// <exception cref="ModelFormatException">The folder is not a usable model; the message names the file, the tensor or key and the problem.</exception>
    /// <exception cref="DirectoryNotFoundException">No such folder.</exception>
    public static SafeTensorsModel Open(string folder, GgmlType? quantize = null)
    {
        if (quantize is { } q && !ReferenceQuantizer.CanQuantizeTo(q))
        {
            throw new ArgumentException($"Quantize-on-load produces Q8_0 or Q4_0, not {q}.", nameof(quantize));
        }

        if (!Directory.Exists(folder))
        {
            throw new DirectoryNotFoundException($"Model folder '{folder}' does not exist.");
        }

        var config = HuggingFaceConfig.Read(System.IO.Path.Combine(folder, "config.json"));
        var shards = SafeTensorsShards.Open(folder);
        try
        {
            var sources = MapNames(shards, config);
            config = config with
            {
                HasQkvBias = sources.ContainsKey("blk.0.attn_q.bias"),
                HasQkNorm = sources.ContainsKey("blk.0.attn_q_norm.weight"),
            };
            CheckTensors(folder, config, shards, sources);
            return new SafeTensorsModel(folder, config, quantize, shards, sources);
        }
        catch
        {
            shards.Dispose();
            throw;
        }
    }

    public string Path { get; }

    public ModelConfig Config { get; }

    /// <summary>The quantize-on-load type, or null.</summary>
    public GgmlType? Quantization { get; }

    /// <summary>The GGUF names of every tensor the folder provides.</summary>
    public IReadOnlyCollection<string> TensorNames => _sources.Keys;

    public bool TryGetTensor(string name, out TensorView tensor)
    {
        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (_views.TryGetValue(name, out tensor))
            {
                return true;
            }

            if (!_sources.TryGetValue(name, out var source))
            {
                return false;
            }

            tensor = Produce(name, source.File, source.Info);
            _views[name] = tensor;
            return true;
        }
    }

    public void Dispose()
    {
        lock (_lock)
        {
            if (_disposed)
            {
                return;
            }

            _disposed = true;
            foreach (var buffer in _owned)
            {
                NativeMemory.AlignedFree((void*)buffer);
            }

            _owned.Clear();
            _views.Clear();
            _shards.Dispose();
        }
    }

    public override string ToString() => $"{Path} (Hugging Face {Config.Architecture}, {_shards.Files.Count} safetensors file(s){(Quantization is { } q ? $", quantized to {q} on load" : "")})";

    private static Dictionary<string, (SafeTensorsFile, SafeTensorInfo)> MapNames(SafeTensorsShards shards, ModelConfig config)
    {
        var sources = new Dictionary<string, (SafeTensorsFile, SafeTensorInfo)>(StringComparer.Ordinal);
        foreach (var file in shards.Files)
        {
            foreach (var tensor in file.Tensors)
            {
                if (HuggingFaceTensorNames.IsIgnored(tensor.Name))
                {
                    continue;
                }

                var gguf = HuggingFaceTensorNames.ToGguf(tensor.Name, config.LayerCount)
                    ?? throw new ModelFormatException(file.Path, $"tensor '{tensor.Name}'",
                        $"has no counterpart in the {config.Architecture.ToString().ToLowerInvariant()} architecture with {config.LayerCount} layers");
                // A tied checkpoint that still saves lm_head saves a copy of the embedding: read the embedding once.
                if (gguf == "output.weight" && config.TiedEmbeddings)
                {
                    continue;
                }

                sources[gguf] = (file, tensor);
            }
        }

        return sources;
    }

    private static void CheckTensors(string folder, ModelConfig c, SafeTensorsShards shards, Dictionary<string, (SafeTensorsFile File, SafeTensorInfo Info)> sources)
    {
        long e = c.EmbeddingLength, q = (long)c.HeadCount * c.HeadDim, kv = (long)c.KvHeadCount * c.HeadDim, ff = c.FeedForwardLength;
        var expected = new Dictionary<string, long[]>(StringComparer.Ordinal)
        {
            ["token_embd.weight"] = [e, c.VocabularySize],
            ["output_norm.weight"] = [e],
        };
        if (!c.TiedEmbeddings)
        {
            expected["output.weight"] = [e, c.VocabularySize];
        }

        for (var i = 0; i < c.LayerCount; i++)
        {
            var p = $"blk.{i}.";
            expected[p + "attn_norm.weight"] = [e];
            expected[p + "attn_q.weight"] = [e, q];
            expected[p + "attn_k.weight"] = [e, kv];
            expected[p + "attn_v.weight"] = [e, kv];
            expected[p + "attn_output.weight"] = [q, e];
            expected[p + "ffn_norm.weight"] = [e];
            expected[p + "ffn_gate.weight"] = [e, ff];
            expected[p + "ffn_up.weight"] = [e, ff];
            expected[p + "ffn_down.weight"] = [ff, e];
            if (c.HasQkvBias)
            {
                expected[p + "attn_q.bias"] = [q];
                expected[p + "attn_k.bias"] = [kv];
                expected[p + "attn_v.bias"] = [kv];
            }

            if (c.HasQkNorm)
            {
                expected[p + "attn_q_norm.weight"] = [c.HeadDim];
                expected[p + "attn_k_norm.weight"] = [c.HeadDim];
            }
        }

        foreach (var (name, shape) in expected)
        {
            if (!sources.TryGetValue(name, out var source))
            {
                var hf = HuggingFaceTensorNames.ToHuggingFace(name);
                var why = name == "output.weight" ? " (config.json's tie_word_embeddings is false, so the logits need their own matrix)" : "";
                throw new ModelFormatException(shards.ExpectedLocation(folder), $"tensor '{hf}'", $"is required by the {c.Architecture.ToString().ToLowerInvariant()} architecture but missing{why}");
            }

            var actual = GgufShape(source.Info);
            if (!actual.SequenceEqual(shape))
            {
                throw new ModelFormatException(source.File.Path, $"tensor '{source.Info.Name}'",
                    $"has shape [{string.Join(", ", source.Info.Shape)}], expected [{string.Join(", ", shape.Reverse())}] from config.json");
            }
        }

        foreach (var (name, source) in sources)
        {
            if (!expected.ContainsKey(name))
            {
                throw new ModelFormatException(source.File.Path, $"tensor '{source.Info.Name}'",
                    "is present, but not in every layer (layer 0 decides which optional tensors the model has)");
            }
        }
    }

    /// <summary>ggml order: PyTorch's shape reversed.</summary>
    private static long[] GgufShape(SafeTensorInfo info) => info.Shape.Reverse().ToArray();

    private TensorView Produce(string name, SafeTensorsFile file, SafeTensorInfo info)
    {
        var shape = GgufShape(info);
        var sourceType = SafeTensorsDTypes.ToGgml(info.DType);
        var targetType = TargetType(name, shape, sourceType);
        var permute = Config.Architecture == ModelArchitecture.Llama &&
            (name.EndsWith(".attn_q.weight", StringComparison.Ordinal) || name.EndsWith(".attn_k.weight", StringComparison.Ordinal) ||
             name.EndsWith(".attn_q.bias", StringComparison.Ordinal) || name.EndsWith(".attn_k.bias", StringComparison.Ordinal));
        var source = file.Address(info);
        if (targetType == sourceType && !permute)
        {
            return new TensorView(name, sourceType, shape, source, info.ByteLength);
        }

        // A vector is handled as rows of one element: that is what the RoPE permutation moves for a bias.
        var rowLength = shape.Length == 1 ? 1 : shape[0];
        var rows = shape.Length == 1 ? shape[0] : shape[1];
        var sourceRowBytes = rowLength * SafeTensorsDTypes.Size(info.DType);
        var targetRowBytes = GgmlTypeInfo.RowBytes(targetType, rowLength);
        var bytes = rows * targetRowBytes;
        var target = (nint)NativeMemory.AlignedAlloc((nuint)Math.Max(bytes, 1), BufferAlignment);
        _owned.Add(target);
        var headDim = Config.HeadDim;
        Parallel.For(0, rows, () => ArrayPool<float>.Shared.Rent((int)rowLength), (row, _, floats) =>
        {
            var from = new ReadOnlySpan<byte>((byte*)source + (permute ? RopePermutation.SourceRow((int)row, headDim) : row) * sourceRowBytes, (int)sourceRowBytes);
            var to = new Span<byte>((byte*)target + row * targetRowBytes, (int)targetRowBytes);
            if (targetType == sourceType)
            {
                from.CopyTo(to);
            }
            else if (targetType == GgmlType.F32)
            {
                ToFloats(from, info.DType, MemoryMarshal.Cast<byte, float>(to));
            }
            else
            {
                var values = floats.AsSpan(0, (int)rowLength);
                ToFloats(from, info.DType, values);
                ReferenceQuantizer.QuantizeRow(targetType, values, to);
            }

            return floats;
        }, floats => ArrayPool<float>.Shared.Return(floats));
        return new TensorView(name, targetType, shape, target, bytes);
    }

    private GgmlType TargetType(string name, long[] shape, GgmlType sourceType)
    {
        if (shape.Length == 1)
        {
            return GgmlType.F32;
        }

        if (Quantization is not { } quantize || shape[0] % ReferenceQuantizer.BlockSize != 0)
        {
            return sourceType;
        }

        var logits = name == "output.weight" || (name == "token_embd.weight" && Config.TiedEmbeddings);
        return quantize == GgmlType.Q4_0 && logits ? GgmlType.Q8_0 : quantize;
    }

    private static void ToFloats(ReadOnlySpan<byte> source, SafeTensorsDType dtype, Span<float> destination)
    {
        switch (dtype)
        {
            case SafeTensorsDType.F32:
                MemoryMarshal.Cast<byte, float>(source).CopyTo(destination);
                break;
            case SafeTensorsDType.F16:
                for (var i = 0; i < destination.Length; i++)
                {
                    destination[i] = (float)BinaryPrimitives.ReadHalfLittleEndian(source[(2 * i)..]);
                }

                break;
            default:
                // bfloat16 is the upper half of a float32.
                for (var i = 0; i < destination.Length; i++)
                {
                    destination[i] = BitConverter.Int32BitsToSingle(BinaryPrimitives.ReadUInt16LittleEndian(source[(2 * i)..]) << 16);
                }

                break;
        }
    }
}
