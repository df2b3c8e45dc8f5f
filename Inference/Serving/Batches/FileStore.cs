using System.Collections.Concurrent;
using System.Text.Json;
using AspireAi.ServiceDefaults;

namespace AspireAi.Inference.Serving.Batches;

/// <summary>
/// A file of the OpenAI Files API (batch input, output and error files); its content stays on disk. <see cref="Tenant"/> owns
/// it (files stored before tenants were recorded belong to the default tenant).
/// </summary>
internal sealed record StoredFile(string Id, string Filename, string Purpose, long CreatedAt, long Bytes, string Tenant = TenantHeaders.DefaultTenant)
{
    public string SortKey => BatchIds.SortKey(Id, CreatedAt);

    public object ToJson() => new { id = Id, @object = "file", bytes = Bytes, created_at = CreatedAt, filename = Filename, purpose = Purpose, status = "processed" };
}

/// <summary>
/// Files under <c>{state}/files</c>: the content as <c>{id}</c> and its description as <c>{id}.json</c>, each written to a
/// temporary file and renamed into place, content first, so a file is listed only once it is whole. On start every file
/// whose description and content exist is listed again (a crash can leave only temporary files, which are removed).
/// Every lookup by a caller names the tenant: another tenant's file is answered as missing, so its existence never shows.
/// </summary>
internal sealed class FileStore
{
    private readonly ConcurrentDictionary<string, StoredFile> _files = new(StringComparer.Ordinal);
    private readonly string _directory;
    private readonly string _replicaTag;

    public FileStore(string directory, string replicaTag, ILogger logger)
    {
        (_directory, _replicaTag) = (directory, replicaTag);
        Directory.CreateDirectory(directory);
        foreach (var path in Directory.EnumerateFiles(directory))
        {
            if (AtomicFile.IsTemporary(path))
            {
                File.Delete(path);
                continue;
            }

            if (!path.EndsWith(".json", StringComparison.Ordinal))
            {
                continue;
            }

            try
            {
                var file = JsonSerializer.Deserialize<StoredFile>(File.ReadAllBytes(path))
                    ?? throw new InvalidDataException("the description is null");
                if (!File.Exists(ContentPath(file.Id)))
                {
                    throw new InvalidDataException($"its content {ContentPath(file.Id)} is missing");
                }

                _files[file.Id] = file;
            }
            catch (Exception e) when (e is JsonException or InvalidDataException or IOException)
            {
                logger.LogWarning("Skipping stored file {Path}: {Problem}", path, e.Message);
            }
        }
    }

    /// <summary>Stores a new file of <paramref name="tenant"/> under a fresh id.</summary>
    public StoredFile Add(string tenant, string filename, string purpose, byte[] content) =>
        Put(BatchIds.New(BatchIds.FilePrefix, _replicaTag, DateTimeOffset.UtcNow), tenant, filename, purpose, content);

    /// <summary>Stores (or replaces) the file <paramref name="id"/>: the batch runner names its result files after the batch,
    /// so finishing a batch again after a restart replaces them instead of adding copies.</summary>
    public StoredFile Put(string id, string tenant, string filename, string purpose, byte[] content)
    {
        var file = new StoredFile(id, filename, purpose, DateTimeOffset.UtcNow.ToUnixTimeSeconds(), content.Length, tenant);
        AtomicFile.Write(ContentPath(id), content);
        AtomicFile.Write(Path.Combine(_directory, id + ".json"), JsonSerializer.SerializeToUtf8Bytes(file));
        _files[id] = file;
        return file;
    }

    /// <summary>The file <paramref name="id"/> if <paramref name="tenant"/> owns it.</summary>
    public StoredFile? Get(string id, string tenant) => _files.GetValueOrDefault(id) is { } file && file.Tenant == tenant ? file : null;

    /// <summary>The file <paramref name="id"/> whoever owns it: for the batch runner, which acts for the batch's tenant.</summary>
    public StoredFile? Find(string id) => _files.GetValueOrDefault(id);

    public byte[] ReadContent(StoredFile file) => File.ReadAllBytes(ContentPath(file.Id));

    public string ContentPath(string id) => Path.Combine(_directory, id);

    public bool Delete(string id, string tenant)
    {
        if (Get(id, tenant) is null || !_files.TryRemove(id, out _))
        {
            return false;
        }

        // Description first: a crash between the two leaves content that nothing lists, never a listed file without content.
        File.Delete(Path.Combine(_directory, id + ".json"));
        File.Delete(ContentPath(id));
        return true;
    }

    public IEnumerable<StoredFile> All => _files.Values;

    public IEnumerable<StoredFile> Of(string tenant) => _files.Values.Where(f => f.Tenant == tenant);
}

/// <summary>Whole-file writes that a crash cannot leave half done: a temporary file beside the target, flushed, renamed over it.</summary>
internal static class AtomicFile
{
    private const string TemporarySuffix = ".tmp";

    public static void Write(string path, ReadOnlySpan<byte> content)
    {
        var temporary = $"{path}.{Guid.NewGuid():N}{TemporarySuffix}";
        using (var stream = new FileStream(temporary, FileMode.CreateNew, FileAccess.Write))
        {
            stream.Write(content);
            stream.Flush(flushToDisk: true);
        }

        File.Move(temporary, path, overwrite: true);
    }

    public static bool IsTemporary(string path) => path.EndsWith(TemporarySuffix, StringComparison.Ordinal);
}
