namespace AspireAi.Inference.Models.Synthetic;

/// <summary>Model shapes from the models' GGUF metadata (hyperparameters as published on their model cards).</summary>
public static class ModelShapes
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

    public static ModelConfig Llama3_70B(int context) => new()
    {
        Architecture = ModelArchitecture.Llama, EmbeddingLength = 8192, LayerCount = 80, HeadCount = 64, KvHeadCount = 8, HeadDim = 128,
        FeedForwardLength = 28672, VocabularySize = 128256, ContextLength = context, RmsNormEpsilon = 1e-5f, RopeTheta = 500000f,
    };

    /// <summary>karpathy's stories15M (../shared/models): small enough for tests and the CPU.</summary>
    public static ModelConfig Stories15M(int context) => new()
    {
        Architecture = ModelArchitecture.Llama, EmbeddingLength = 288, LayerCount = 6, HeadCount = 6, KvHeadCount = 6, HeadDim = 48,
        FeedForwardLength = 768, VocabularySize = 32000, ContextLength = context, RmsNormEpsilon = 1e-5f, RopeTheta = 10000f,
    };

    /// <summary>The shapes by the names <c>random:</c> model references use.</summary>
    public static IReadOnlyDictionary<string, Func<int, ModelConfig>> ByName { get; } = new Dictionary<string, Func<int, ModelConfig>>(StringComparer.OrdinalIgnoreCase)
    {
        ["stories15m"] = Stories15M,
        ["qwen2-0.5b"] = Qwen2_05B,
        ["qwen3-0.6b"] = Qwen3_06B,
        ["llama3.2-1b"] = Llama32_1B,
        ["llama3-8b"] = Llama3_8B,
        ["llama3-70b"] = Llama3_70B,
    };
}
