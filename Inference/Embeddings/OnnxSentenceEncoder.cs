using System.Numerics.Tensors;
using Microsoft.ML.OnnxRuntime;
using SessionOptions = Microsoft.ML.OnnxRuntime.SessionOptions;
using Microsoft.ML.Tokenizers;

namespace AspireAi.Inference.Embeddings;

/// <summary>
/// A BERT-style sentence encoder run by ONNX Runtime on the CPU: WordPiece tokens → [CLS] tokens [SEP] → transformer →
/// mean (or CLS) pooling over the attention mask → L2 normalisation, exactly the sentence-transformers recipe.
/// </summary>
/// <remarks>
/// ONNX Runtime rather than our own engine: the engine's forward pass is a causal decoder over a paged KV cache; an encoder
/// is bidirectional and stateless, and ONNX Runtime runs this exported graph as trained, with fused attention kernels.
/// </remarks>
internal sealed class OnnxSentenceEncoder : IEmbeddingModel, IDisposable
{
    private static readonly string[] InputNames = ["input_ids", "attention_mask", "token_type_ids"];
    private static readonly string[] OutputNames = ["last_hidden_state"];

    private readonly InferenceSession _session;
    private readonly BertTokenizer _tokenizer;
    private readonly int _maxTokens;
    private readonly bool _clsPooling;

    public OnnxSentenceEncoder(string id, byte[] model, byte[] vocabulary, EmbeddingOptions options)
    {
        Id = id;
        _maxTokens = options.MaxTokens;
        _clsPooling = string.Equals(options.Pooling, "cls", StringComparison.OrdinalIgnoreCase);
        SupportsShorterDimensions = options.Matryoshka;
        _tokenizer = BertTokenizer.Create(new MemoryStream(vocabulary), new BertOptions { LowerCaseBeforeTokenization = true });
        VocabularySize = new StreamReader(new MemoryStream(vocabulary)).ReadToEnd().Split('\n').Count(line => line.Length > 0);

        using var sessionOptions = new SessionOptions
        {
            GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL,
            IntraOpNumThreads = options.Threads > 0 ? options.Threads : Environment.ProcessorCount,
            // Requests run one ONNX call at a time (EmbeddingBatcher); parallelism is inside the call.
            InterOpNumThreads = 1,
        };
        _session = new InferenceSession(model, sessionOptions);
        foreach (var input in InputNames)
        {
            if (!_session.InputMetadata.ContainsKey(input))
            {
                throw new InvalidDataException(
                    $"Embedding model '{id}' has no input '{input}' (it has {string.Join(", ", _session.InputMetadata.Keys)}): not a BERT-style encoder.");
            }
        }

        var hidden = _session.OutputMetadata.TryGetValue(OutputNames[0], out var output)
            ? output.Dimensions[^1]
            : throw new InvalidDataException($"Embedding model '{id}' has no output 'last_hidden_state'.");
        Dimensions = hidden > 0 ? hidden : throw new InvalidDataException($"Embedding model '{id}' has no fixed hidden size.");
    }

    public string Id { get; }

    public int Dimensions { get; }

    public bool SupportsShorterDimensions { get; }

    public int VocabularySize { get; }

    private int ClsId => _tokenizer.ClassificationTokenId;

    private int SepId => _tokenizer.SeparatorTokenId;

    public int[] Tokenize(string text)
    {
        var ids = _tokenizer.EncodeToIds(text, addSpecialTokens: false, considerPreTokenization: true, considerNormalization: true);
        var limit = _maxTokens - 2;
        return ids.Count <= limit ? [.. ids] : [.. ids.Take(limit)];
    }

    public float[][] Embed(IReadOnlyList<int[]> inputs, CancellationToken cancellationToken)
    {
        var batch = inputs.Count;
        var length = 2 + inputs.Max(i => Math.Min(i.Length, _maxTokens - 2));
        var ids = new long[batch * length];
        var mask = new long[batch * length];
        var types = new long[batch * length];
        for (var b = 0; b < batch; b++)
        {
            var tokens = inputs[b].AsSpan(0, Math.Min(inputs[b].Length, _maxTokens - 2));
            var row = b * length;
            ids[row] = ClsId;
            for (var t = 0; t < tokens.Length; t++)
            {
                ids[row + 1 + t] = tokens[t];
            }

            ids[row + 1 + tokens.Length] = SepId;
            mask.AsSpan(row, tokens.Length + 2).Fill(1);
        }

        long[] shape = [batch, length];
        using var idsValue = OrtValue.CreateTensorValueFromMemory(ids, shape);
        using var maskValue = OrtValue.CreateTensorValueFromMemory(mask, shape);
        using var typesValue = OrtValue.CreateTensorValueFromMemory(types, shape);
        using var runOptions = new RunOptions();
        using var cancel = cancellationToken.Register(() => runOptions.Terminate = true);
        using var outputs = _session.Run(runOptions, InputNames, [idsValue, maskValue, typesValue], OutputNames);
        var hidden = outputs[0].GetTensorDataAsSpan<float>();

        var result = new float[batch][];
        for (var b = 0; b < batch; b++)
        {
            var vector = new float[Dimensions];
            var tokens = 2 + Math.Min(inputs[b].Length, _maxTokens - 2);
            var rowStates = hidden.Slice(b * length * Dimensions, length * Dimensions);
            if (_clsPooling)
            {
                rowStates[..Dimensions].CopyTo(vector);
            }
            else
            {
                // Mean over the real tokens ([CLS] and [SEP] included, padding excluded), as sentence-transformers pools.
                for (var t = 0; t < tokens; t++)
                {
                    TensorPrimitives.Add(vector, rowStates.Slice(t * Dimensions, Dimensions), vector);
                }
            }

            Normalize(vector);
            result[b] = vector;
        }

        return result;
    }

    /// <summary>Scales <paramref name="vector"/> to unit length, so that cosine similarity is a dot product.</summary>
    public static void Normalize(Span<float> vector)
    {
        var norm = TensorPrimitives.Norm(vector);
        if (norm > 0)
        {
            TensorPrimitives.Divide(vector, norm, vector);
        }
    }

    public void Dispose() => _session.Dispose();
}
