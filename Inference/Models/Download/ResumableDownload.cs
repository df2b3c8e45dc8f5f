using System.Net;
using System.Net.Http.Headers;

namespace AspireAi.Inference.Models.Download;

/// <summary>
/// Downloads one URL into a file through <c>FILE.part</c>, resuming with an HTTP <c>Range</c> request where the part left off
/// (after an interrupted run, or a connection that broke mid-transfer), and renames it to the final name only once the
/// whole body has arrived and passed <paramref name="verify"/>.
/// </summary>
internal sealed class ResumableDownload(HttpClient http, TimeSpan stallTimeout)
{
    // Attempts per download; one that made progress does not count against the limit.
    private const int MaxFailedAttempts = 4;
    private const int CopyBufferBytes = 1 << 16;

    /// <param name="verify">Checks the complete part file before it gets the final name; throws to refuse it.</param>
    public async Task DownloadAsync(Uri url, string destination, string stage, AuthenticationHeaderValue? authorization,
        Action<string>? verify, IProgress<DownloadProgress>? progress, CancellationToken cancellationToken)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(destination))!);
        var part = destination + ".part";
        var failures = 0;
        while (true)
        {
            var have = File.Exists(part) ? new FileInfo(part).Length : 0;
            Exception error;
            try
            {
                if (await TryOnceAsync(url, part, have, stage, authorization, progress, cancellationToken))
                {
                    break;
                }

                error = new ModelDownloadException($"GET {url.AbsoluteUri}: the body ended before the length the server announced");
            }
            catch (Exception e) when (e is IOException or HttpRequestException && !cancellationToken.IsCancellationRequested)
            {
                error = e;
            }

            var progressed = (File.Exists(part) ? new FileInfo(part).Length : 0) > have;
            if (!progressed && ++failures >= MaxFailedAttempts)
            {
                throw new ModelDownloadException($"GET {url.AbsoluteUri}: failed {failures} times without progress; the partial download stays in {part} for the next attempt: {error.Message}", error);
            }

            if (!progressed)
            {
                await Task.Delay(TimeSpan.FromSeconds(failures), cancellationToken);
            }
        }

        try
        {
            verify?.Invoke(part);
        }
        catch
        {
            File.Delete(part);
            throw;
        }

        File.Move(part, destination, overwrite: true);
    }

    /// <summary>One request; true when the part file is complete, false when the body ended short.</summary>
    private async Task<bool> TryOnceAsync(Uri url, string part, long have, string stage, AuthenticationHeaderValue? authorization,
        IProgress<DownloadProgress>? progress, CancellationToken cancellationToken)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, url);
        request.Headers.Authorization = authorization;
        if (have > 0)
        {
            request.Headers.Range = new RangeHeaderValue(have, null);
        }

        using var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken);
        var range = response.Content.Headers.ContentRange;
        if (response.StatusCode == HttpStatusCode.RequestedRangeNotSatisfiable && have > 0)
        {
            // Nothing past what we have: complete when the server's length agrees, otherwise start over.
            if (range?.Length == have)
            {
                return true;
            }

            File.Delete(part);
            return false;
        }

        if (!response.IsSuccessStatusCode)
        {
            var message = $"GET {url.AbsoluteUri}: {(int)response.StatusCode} {response.ReasonPhrase}";
            // Server trouble may pass; a refusal (404, 401…) will not.
            throw (int)response.StatusCode >= 500 ? new HttpRequestException(message) : new ModelDownloadException(message);
        }

        var append = response.StatusCode == HttpStatusCode.PartialContent;
        if (append && range?.From != have)
        {
            File.Delete(part);
            throw new HttpRequestException($"GET {url.AbsoluteUri}: asked for bytes from {have}, the server sent {range}");
        }

        var total = append ? range?.Length : response.Content.Headers.ContentLength;
        var done = append ? have : 0;
        await using (var file = new FileStream(part, append ? FileMode.Append : FileMode.Create, FileAccess.Write, FileShare.None, CopyBufferBytes, useAsync: true))
        await using (var body = await response.Content.ReadAsStreamAsync(cancellationToken))
        {
            var buffer = new byte[CopyBufferBytes];
            using var stall = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            progress?.Report(new DownloadProgress(stage, done, total));
            while (true)
            {
                stall.CancelAfter(stallTimeout);
                int read;
                try
                {
                    read = await body.ReadAsync(buffer, stall.Token);
                }
                catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
                {
                    throw new IOException($"GET {url.AbsoluteUri}: no data for {stallTimeout.TotalSeconds:0} s");
                }

                if (read == 0)
                {
                    break;
                }

                await file.WriteAsync(buffer.AsMemory(0, read), cancellationToken);
                done += read;
                progress?.Report(new DownloadProgress(stage, done, total));
            }
        }

        return total is null || new FileInfo(part).Length == total;
    }
}
