using Microsoft.Extensions.Options;

namespace AspireAi.Inference.Embeddings;

/// <summary>
/// The embedding models this replica serves, by id. <c>GET /v1/models</c> lists <see cref="ModelIds"/>; a model is loaded
/// on its first use (about a second for all-MiniLM-L6-v2), so a replica that only generates text never pays for it.
/// </summary>
public sealed class EmbeddingModelCatalog : IDisposable
{
    private readonly Lazy<IEmbeddingModel>? _model;

    public EmbeddingModelCatalog(IOptions<EmbeddingOptions> options)
    {
        var settings = options.Value;
        if (string.Equals(settings.Model, "none", StringComparison.OrdinalIgnoreCase))
        {
            ModelIds = [];
            return;
        }

        var id = settings.Model == MiniLmModelFiles.ModelId
            ? MiniLmModelFiles.ModelId
            : settings.ServedModelName ?? Path.GetFileName(settings.Model.TrimEnd('/', '\\'));
        ModelIds = [id];
        _model = new Lazy<IEmbeddingModel>(() => Load(id, settings), LazyThreadSafetyMode.ExecutionAndPublication);
    }

    /// <summary>Ids of the embedding models served, for <c>GET /v1/models</c>.</summary>
    public IReadOnlyList<string> ModelIds { get; }

    internal bool TryGet(string id, out IEmbeddingModel model)
    {
        if (_model is not null && ModelIds.Contains(id, StringComparer.Ordinal))
        {
            model = _model.Value;
            return true;
        }

        model = null!;
        return false;
    }

    private static OnnxSentenceEncoder Load(string id, EmbeddingOptions settings)
    {
        if (id == MiniLmModelFiles.ModelId)
        {
            var (model, vocabulary) = MiniLmModelFiles.Load();
            return new OnnxSentenceEncoder(id, model, vocabulary, settings);
        }

        var folder = settings.Model;
        var modelPath = Path.Combine(folder, "model.onnx");
        var vocabularyPath = Path.Combine(folder, "vocab.txt");
        foreach (var required in new[] { modelPath, vocabularyPath })
        {
            if (!File.Exists(required))
            {
                throw new FileNotFoundException(
                    $"Embedding model folder '{folder}' (Inference:Embeddings:Model) has no '{Path.GetFileName(required)}'.", required);
            }
        }

        return new OnnxSentenceEncoder(id, File.ReadAllBytes(modelPath), File.ReadAllBytes(vocabularyPath), settings);
    }

    public void Dispose()
    {
        if (_model is { IsValueCreated: true, Value: IDisposable disposable })
        {
            disposable.Dispose();
        }
    }
}
