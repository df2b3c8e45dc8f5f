using System.Buffers.Binary;
using System.Net.Http.Headers;

namespace AspireAi.Inference.Models.Download;

/// <summary>
/// Turns what a user passes as <c>--model</c> into a local path: nothing means the default model (<see cref="DefaultModel"/>),
/// <c>hf:OWNER/REPO/FILE.gguf</c> a Hugging Face download into the model cache (resumed, with progress), anything else a
/// local GGUF file or Hugging Face folder (<see cref="UserPath"/>: a relative one also against the shell's folder).
/// </summary>
public sealed class ModelLocator(ModelDownloadSettings? settings = null)
{
    private const string HuggingFacePrefix = "hf:";
    private const uint GgufMagic = 0x46554747;

    private readonly ModelDownloadSettings _settings = settings ?? new ModelDownloadSettings();

    /// <summary>The local path of <paramref name="model"/>, downloading it first when it is remote and not yet cached.</summary>
    /// <exception cref="FileNotFoundException">A local path that does not exist.</exception>
    /// <exception cref="ArgumentException">A malformed <c>hf:</c> reference.</exception>
    /// <exception cref="ModelDownloadException">A download failed or delivered something that is not the model.</exception>
    public async Task<string> ResolveAsync(string? model, IProgress<DownloadProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        if (string.IsNullOrWhiteSpace(model))
        {
            return await new DefaultModel(_settings).EnsureAsync(progress, cancellationToken);
        }

        if (model.StartsWith(HuggingFacePrefix, StringComparison.Ordinal))
        {
            return await DownloadFromHuggingFaceAsync(model, progress, cancellationToken);
        }

        if (model.StartsWith(Synthetic.RandomModel.Prefix, StringComparison.Ordinal))
        {
            return model;
        }

        if (UserPath.Find(model) is { } local)
        {
            return local;
        }

        throw new FileNotFoundException(
            $"Model '{model}' does not exist{UserPath.Searched(model)}. Give a .gguf file, a Hugging Face model folder, hf:OWNER/REPO/FILE.gguf, random:SHAPE[:TYPE] (random weights, for benchmarks), or nothing for the default stories15M.", model);
    }

    /// <summary>Where <c>hf:OWNER/REPO/FILE</c> is cached: <c>&lt;cache&gt;/huggingface/OWNER/REPO/FILE</c>.</summary>
    public string HuggingFaceCachePath(string reference)
    {
        var (owner, repo, file) = ParseHuggingFace(reference);
        return Path.Combine([_settings.CacheDirectory, "huggingface", owner, repo, .. file.Split('/')]);
    }

    private async Task<string> DownloadFromHuggingFaceAsync(string reference, IProgress<DownloadProgress>? progress, CancellationToken cancellationToken)
    {
        var (owner, repo, file) = ParseHuggingFace(reference);
        var destination = HuggingFaceCachePath(reference);
        if (File.Exists(destination))
        {
            return destination;
        }

        var escaped = string.Join('/', new[] { owner, repo, "resolve", "main" }.Concat(file.Split('/')).Select(Uri.EscapeDataString));
        var url = new Uri(_settings.HuggingFace, escaped);
        var authorization = string.IsNullOrEmpty(_settings.HuggingFaceToken) ? null : new AuthenticationHeaderValue("Bearer", _settings.HuggingFaceToken);
        using var http = _settings.CreateClient();
        await new ResumableDownload(http, _settings.StallTimeout).DownloadAsync(url, destination, $"downloading {owner}/{repo}/{file}",
            authorization, part => CheckGguf(part, url), progress, cancellationToken);
        return destination;
    }

    private static (string Owner, string Repo, string File) ParseHuggingFace(string reference)
    {
        var parts = reference[HuggingFacePrefix.Length..].Split('/');
        if (parts.Length < 3 || parts.Any(p => p.Length == 0 || p is "." or ".." || p.Contains('\\')))
        {
            throw new ArgumentException($"'{reference}' is not hf:OWNER/REPO/FILE.gguf (three or more non-empty path parts, no '.' or '..').", nameof(reference));
        }

        var file = string.Join('/', parts[2..]);
        if (!file.EndsWith(".gguf", StringComparison.OrdinalIgnoreCase))
        {
            throw new ArgumentException($"'{reference}': only single .gguf files download from Hugging Face; for a safetensors model, download its folder and pass the folder.", nameof(reference));
        }

        return (parts[0], parts[1], file);
    }

    // A wrong URL can answer 200 with an HTML page: refuse to cache anything that does not start as a GGUF file.
    private static void CheckGguf(string part, Uri url)
    {
        Span<byte> magic = stackalloc byte[4];
        using var file = File.OpenRead(part);
        if (file.ReadAtLeast(magic, 4, throwOnEndOfStream: false) < 4 || BinaryPrimitives.ReadUInt32LittleEndian(magic) != GgufMagic)
        {
            throw new ModelDownloadException($"GET {url.AbsoluteUri}: the download is not a GGUF file (it does not start with \"GGUF\"); nothing was kept");
        }
    }
}
