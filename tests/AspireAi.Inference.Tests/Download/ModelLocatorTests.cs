using AspireAi.Inference.Models.Download;
using Microsoft.AspNetCore.Http;
using AspireAi.Inference.Tests.Support;

namespace AspireAi.Inference.Tests.Download;

/// <summary>
/// <see cref="ModelLocator"/> on local paths and on <c>hf:</c> downloads from a local Kestrel server standing in for the
/// Hugging Face hub: caching, Range resume of a <c>.part</c> file (left over, or cut mid-transfer), servers that ignore
/// ranges, and refusals that keep nothing.
/// </summary>
public sealed class ModelLocatorTests : IAsyncLifetime
{
    private readonly TempDirectory _temp = new();
    private LocalHttpServer _server = null!;
    private ModelLocator _locator = null!;
    private readonly byte[] _model = CreateModelBytes();

    public async ValueTask InitializeAsync()
    {
        _server = await LocalHttpServer.StartAsync();
        _locator = new ModelLocator(new ModelDownloadSettings
        {
            CacheDirectory = _temp.File("cache"),
            HuggingFace = _server.BaseAddress,
            HuggingFaceToken = null,
            StallTimeout = TimeSpan.FromSeconds(20),
        });
    }

    public async ValueTask DisposeAsync()
    {
        await _server.DisposeAsync();
        _temp.Dispose();
    }

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private const string Reference = "hf:owner/repo/sub dir/model.gguf";
    private const string ServedPath = "/owner/repo/resolve/main/sub%20dir/model.gguf";

    [Fact]
    public async Task Local_paths_are_returned_as_given_and_missing_ones_are_a_clear_error()
    {
        var file = _temp.File("m.gguf");
        await File.WriteAllBytesAsync(file, _model, Ct);
        Assert.Equal(file, await _locator.ResolveAsync(file, cancellationToken: Ct));
        Assert.Equal(_temp.Path, await _locator.ResolveAsync(_temp.Path, cancellationToken: Ct));

        var e = await Assert.ThrowsAsync<FileNotFoundException>(() => _locator.ResolveAsync(_temp.File("absent.gguf"), cancellationToken: Ct));
        Assert.Contains("absent.gguf", e.Message);
        Assert.Contains("hf:OWNER/REPO/FILE.gguf", e.Message);
        Assert.Empty(_server.Requests);
    }

    [Fact]
    public async Task Hf_reference_downloads_into_the_cache_once()
    {
        _server.Handler = context => context.Request.Path == ServedPath
            ? LocalHttpServer.ServeWithRanges(context, _model)
            : Task.Run(() => context.Response.StatusCode = 404);
        var reports = new List<DownloadProgress>();

        var path = await _locator.ResolveAsync(Reference, new Recorder(reports.Add), Ct);

        Assert.Equal(Path.Combine(_temp.File("cache"), "huggingface", "owner", "repo", "sub dir", "model.gguf"), path);
        Assert.Equal(_model, await File.ReadAllBytesAsync(path, Ct));
        Assert.False(File.Exists(path + ".part"));
        Assert.Equal(_model.Length, reports[^1].Done);
        Assert.All(reports, r => Assert.Equal(_model.Length, r.Total));

        Assert.Equal(path, await _locator.ResolveAsync(Reference, cancellationToken: Ct));
        Assert.Single(_server.Requests);
    }

    [Fact]
    public async Task A_left_over_part_file_is_resumed_with_a_range_request()
    {
        _server.Handler = context => LocalHttpServer.ServeWithRanges(context, _model);
        var destination = _locator.HuggingFaceCachePath(Reference);
        Directory.CreateDirectory(Path.GetDirectoryName(destination)!);
        await File.WriteAllBytesAsync(destination + ".part", _model[..100_000], Ct);

        var path = await _locator.ResolveAsync(Reference, cancellationToken: Ct);

        Assert.Equal(_model, await File.ReadAllBytesAsync(path, Ct));
        var request = Assert.Single(_server.Requests);
        Assert.Equal("bytes=100000-", request.Range);
    }

    [Fact]
    public async Task A_transfer_cut_mid_body_resumes_where_it_stopped()
    {
        var calls = 0;
        _server.Handler = context => LocalHttpServer.ServeWithRanges(context, _model, dropAfter: Interlocked.Increment(ref calls) == 1 ? 150_000 : null);

        var path = await _locator.ResolveAsync(Reference, cancellationToken: Ct);

        Assert.Equal(_model, await File.ReadAllBytesAsync(path, Ct));
        var requests = _server.Requests.ToArray();
        Assert.Equal(2, requests.Length);
        Assert.Null(requests[0].Range);
        // The second request starts where the received bytes end (all of the 150,000 sent, or fewer if some were lost).
        var resumedAt = long.Parse(requests[1].Range!["bytes=".Length..^1]);
        Assert.InRange(resumedAt, 1, 150_000);
    }

    [Fact]
    public async Task A_server_that_ignores_ranges_restarts_the_file()
    {
        _server.Handler = async context =>
        {
            context.Response.ContentLength = _model.Length;
            await context.Response.Body.WriteAsync(_model);
        };
        var destination = _locator.HuggingFaceCachePath(Reference);
        Directory.CreateDirectory(Path.GetDirectoryName(destination)!);
        await File.WriteAllBytesAsync(destination + ".part", new byte[70_000], Ct);

        var path = await _locator.ResolveAsync(Reference, cancellationToken: Ct);

        Assert.Equal(_model, await File.ReadAllBytesAsync(path, Ct));
        Assert.Equal("bytes=70000-", Assert.Single(_server.Requests).Range);
    }

    [Fact]
    public async Task A_complete_part_file_is_finished_on_416()
    {
        _server.Handler = context => LocalHttpServer.ServeWithRanges(context, _model);
        var destination = _locator.HuggingFaceCachePath(Reference);
        Directory.CreateDirectory(Path.GetDirectoryName(destination)!);
        await File.WriteAllBytesAsync(destination + ".part", _model, Ct);

        var path = await _locator.ResolveAsync(Reference, cancellationToken: Ct);

        Assert.Equal(_model, await File.ReadAllBytesAsync(path, Ct));
        Assert.Equal($"bytes={_model.Length}-", Assert.Single(_server.Requests).Range);
    }

    [Fact]
    public async Task Refusals_and_non_gguf_bodies_keep_nothing()
    {
        _server.Handler = context => Task.Run(() => context.Response.StatusCode = 404);
        var e = await Assert.ThrowsAsync<ModelDownloadException>(() => _locator.ResolveAsync(Reference, cancellationToken: Ct));
        Assert.Contains(ServedPath, e.Message);
        Assert.Contains("404", e.Message);

        _server.Handler = context => context.Response.WriteAsync("<html>not a model</html>", Ct);
        e = await Assert.ThrowsAsync<ModelDownloadException>(() => _locator.ResolveAsync(Reference, cancellationToken: Ct));
        Assert.Contains("not a GGUF file", e.Message);

        var folder = Path.GetDirectoryName(_locator.HuggingFaceCachePath(Reference))!;
        Assert.Empty(Directory.Exists(folder) ? Directory.GetFiles(folder) : []);
    }

    [Theory]
    [InlineData("hf:owner/repo")]
    [InlineData("hf:owner//model.gguf")]
    [InlineData("hf:owner/repo/../model.gguf")]
    [InlineData("hf:owner/repo/model.safetensors")]
    public async Task Malformed_hf_references_are_argument_errors(string reference)
    {
        var e = await Assert.ThrowsAsync<ArgumentException>(() => _locator.ResolveAsync(reference, cancellationToken: Ct));
        Assert.Contains(reference, e.Message);
        Assert.Empty(_server.Requests);
    }

    /// <summary>A GGUF header followed by 300 KB of pseudo-random bytes: several socket writes, and a real magic to check.</summary>
    private static byte[] CreateModelBytes()
    {
        var bytes = new byte[300_000];
        new Random(21).NextBytes(bytes);
        "GGUF"u8.CopyTo(bytes);
        return bytes;
    }

    private sealed class Recorder(Action<DownloadProgress> record) : IProgress<DownloadProgress>
    {
        public void Report(DownloadProgress value) => record(value);
    }
}
