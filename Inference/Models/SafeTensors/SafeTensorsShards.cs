using System.Text.Json;

namespace AspireAi.Inference.Models.SafeTensors;

/// <summary>
/// The <c>*.safetensors</c> files of a Hugging Face folder, opened: the shards named by <c>model.safetensors.index.json</c>
/// (checked against what each shard really holds), else every <c>*.safetensors</c> in the folder.
/// </summary>
internal sealed class SafeTensorsShards : IDisposable
{
    public const string IndexFileName = "model.safetensors.index.json";

    private SafeTensorsShards(List<SafeTensorsFile> files, string? indexPath)
    {
        Files = files;
        IndexPath = indexPath;
    }

    public IReadOnlyList<SafeTensorsFile> Files { get; }

    /// <summary>The index file, when the folder has one.</summary>
    public string? IndexPath { get; }

    /// <summary>Where a tensor that no shard holds should have been: the index, the only file, or the folder.</summary>
    public string ExpectedLocation(string folder) => IndexPath ?? (Files.Count == 1 ? Files[0].Path : folder);

    public static SafeTensorsShards Open(string folder)
    {
        var indexPath = System.IO.Path.Combine(folder, IndexFileName);
        var files = new List<SafeTensorsFile>();
        try
        {
            if (File.Exists(indexPath))
            {
                var weightMap = ReadWeightMap(indexPath, folder);
                foreach (var shard in weightMap.Values.Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal))
                {
                    files.Add(SafeTensorsFile.Open(System.IO.Path.Combine(folder, shard)));
                }

                CheckAgainstIndex(files, weightMap, indexPath);
                return new SafeTensorsShards(files, indexPath);
            }

            var paths = Directory.GetFiles(folder, "*.safetensors").Order(StringComparer.Ordinal).ToList();
            if (paths.Count == 0)
            {
                throw new ModelFormatException(folder, null, $"has no model.safetensors (nor {IndexFileName} and its shards)");
            }

            foreach (var path in paths)
            {
                files.Add(SafeTensorsFile.Open(path));
            }

            CheckUnique(files);
            return new SafeTensorsShards(files, null);
        }
        catch
        {
            files.ForEach(f => f.Dispose());
            throw;
        }
    }

    public void Dispose()
    {
        foreach (var file in Files)
        {
            file.Dispose();
        }
    }

    /// <summary>tensor name → shard file name, each shard checked to be a plain file name that exists in the folder.</summary>
    private static Dictionary<string, string> ReadWeightMap(string indexPath, string folder)
    {
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(File.ReadAllBytes(indexPath));
        }
        catch (JsonException e)
        {
            throw new ModelFormatException(indexPath, null, $"is not valid JSON: {e.Message}", e);
        }

        using (document)
        {
            try
            {
                return ParseWeightMap(document.RootElement, indexPath, folder);
            }
            catch (InvalidOperationException e)
            {
                // A \uD800-style escape that is not valid Unicode: System.Text.Json refuses to transcode it.
                throw new ModelFormatException(indexPath, null, $"has a string that is not valid Unicode: {e.Message}", e);
            }
        }
    }

    private static Dictionary<string, string> ParseWeightMap(JsonElement root, string indexPath, string folder)
    {
        if (root.ValueKind != JsonValueKind.Object ||
            !root.TryGetProperty("weight_map", out var map) || map.ValueKind != JsonValueKind.Object)
        {
            throw new ModelFormatException(indexPath, "key 'weight_map'", "is missing or not an object of tensor name → shard file");
        }

        var weightMap = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var entry in map.EnumerateObject())
        {
            var item = $"tensor '{entry.Name}'";
            var shard = entry.Value.ValueKind == JsonValueKind.String ? entry.Value.GetString()! : throw new ModelFormatException(indexPath, item, $"shard must be a file name, found {entry.Value.GetRawText()}");
            if (shard != System.IO.Path.GetFileName(shard) || !shard.EndsWith(".safetensors", StringComparison.Ordinal))
            {
                throw new ModelFormatException(indexPath, item, $"shard '{shard}' is not the name of a .safetensors file inside the model folder");
            }

            if (!weightMap.TryAdd(entry.Name, shard))
            {
                throw new ModelFormatException(indexPath, item, "appears twice in weight_map");
            }

            if (!File.Exists(System.IO.Path.Combine(folder, shard)))
            {
                throw new ModelFormatException(indexPath, item, $"is in shard '{shard}', which is missing from the folder");
            }
        }

        if (weightMap.Count == 0)
        {
            throw new ModelFormatException(indexPath, "key 'weight_map'", "is empty");
        }

        return weightMap;
    }

    private static void CheckAgainstIndex(List<SafeTensorsFile> files, Dictionary<string, string> weightMap, string indexPath)
    {
        foreach (var file in files)
        {
            var shard = System.IO.Path.GetFileName(file.Path);
            foreach (var tensor in file.Tensors)
            {
                if (!weightMap.TryGetValue(tensor.Name, out var listed))
                {
                    throw new ModelFormatException(file.Path, $"tensor '{tensor.Name}'", $"is not listed in {IndexFileName}");
                }

                if (listed != shard)
                {
                    throw new ModelFormatException(file.Path, $"tensor '{tensor.Name}'", $"is listed in {IndexFileName} as being in '{listed}'");
                }
            }
        }

        foreach (var (name, shard) in weightMap)
        {
            var file = files.First(f => System.IO.Path.GetFileName(f.Path) == shard);
            if (file.FindTensor(name) is null)
            {
                throw new ModelFormatException(file.Path, $"tensor '{name}'", $"is listed in {IndexFileName} but missing from this shard");
            }
        }
    }

    private static void CheckUnique(List<SafeTensorsFile> files)
    {
        var seen = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var file in files)
        {
            foreach (var tensor in file.Tensors)
            {
                if (!seen.TryAdd(tensor.Name, file.Path))
                {
                    throw new ModelFormatException(file.Path, $"tensor '{tensor.Name}'", $"is also in '{seen[tensor.Name]}'");
                }
            }
        }
    }
}
