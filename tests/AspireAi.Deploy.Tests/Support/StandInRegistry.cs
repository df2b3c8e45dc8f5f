using System.Formats.Tar;
using System.IO.Compression;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace AspireAi.Deploy.Tests.Support;

/// <summary>
/// A container registry on loopback serving one stand-in base image, for <c>dotnet publish -t:PublishContainer</c>.
/// Why a stand-in: the real base (mcr.microsoft.com/dotnet/aspnet:10.0-noble-chiseled) cannot be pulled here (no network:
/// the SDK fails with "Name or service not known (mcr.microsoft.com:443)"). A real registry server (Debian's
/// docker-registry) would still need a base image pushed into it by another tool and an install step in CI, while the SDK
/// needs only a registry's read API (Docker Registry HTTP API v2: /v2/, manifests, blobs), implemented here for one image:
/// its config declares what the chiseled image declares that the SDK reads (APP_UID, ASPNETCORE_HTTP_PORTS, user 1654),
/// and its single layer holds /etc/passwd with the app user. Our own image config (entrypoint, user, env, ports) comes
/// from our csproj properties on top of it, which is what the tests check.
/// </summary>
internal sealed class StandInRegistry : IAsyncDisposable
{
    public const string Repository = "dotnet/aspnet";
    public const string Tag = "10.0-noble-chiseled";
    private const string ManifestMediaType = "application/vnd.docker.distribution.manifest.v2+json";

    private readonly WebApplication _app;
    private readonly Dictionary<string, byte[]> _blobs = [];
    private readonly byte[] _manifest;

    private StandInRegistry(WebApplication app, byte[] manifest, IEnumerable<byte[]> blobs)
    {
        _app = app;
        _manifest = manifest;
        foreach (var blob in blobs)
        {
            _blobs[Digest(blob)] = blob;
        }
    }

    public string Host { get; private set; } = "";

    public string BaseImage => $"{Host}/{Repository}:{Tag}";

    public static async Task<StandInRegistry> StartAsync()
    {
        var layerTar = new MemoryStream();
        using (var tar = new TarWriter(layerTar, TarEntryFormat.Pax, leaveOpen: true))
        {
            var passwd = new PaxTarEntry(TarEntryType.RegularFile, "etc/passwd")
            {
                DataStream = new MemoryStream(Encoding.ASCII.GetBytes("root:x:0:0:root:/root:/noshell\napp:x:1654:1654::/home/app:/noshell\n")),
            };
            tar.WriteEntry(passwd);
        }

        var uncompressed = layerTar.ToArray();
        var compressed = new MemoryStream();
        using (var gzip = new GZipStream(compressed, CompressionLevel.Fastest, leaveOpen: true))
        {
            gzip.Write(uncompressed);
        }

        var layer = compressed.ToArray();
        var config = Encoding.UTF8.GetBytes(new JsonObject
        {
            ["architecture"] = "amd64",
            ["os"] = "linux",
            ["config"] = new JsonObject
            {
                ["Env"] = new JsonArray("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "APP_UID=1654",
                    "ASPNETCORE_HTTP_PORTS=8080", "DOTNET_RUNNING_IN_CONTAINER=true", "DOTNET_VERSION=10.0.0", "ASPNET_VERSION=10.0.0"),
                ["User"] = "1654",
                ["WorkingDir"] = "/",
            },
            ["rootfs"] = new JsonObject { ["type"] = "layers", ["diff_ids"] = new JsonArray(Digest(uncompressed)) },
        }.ToJsonString());
        var manifest = Encoding.UTF8.GetBytes(new JsonObject
        {
            ["schemaVersion"] = 2,
            ["mediaType"] = ManifestMediaType,
            ["config"] = new JsonObject
            {
                ["mediaType"] = "application/vnd.docker.container.image.v1+json", ["size"] = config.Length, ["digest"] = Digest(config),
            },
            ["layers"] = new JsonArray(new JsonObject
            {
                ["mediaType"] = "application/vnd.docker.image.rootfs.diff.tar.gzip", ["size"] = layer.Length, ["digest"] = Digest(layer),
            }),
        }.ToJsonString());

        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        var app = builder.Build();
        var registry = new StandInRegistry(app, manifest, [config, layer]);
        app.MapMethods("/v2/", ["GET", "HEAD"], () => Results.Ok());
        app.MapMethods("/v2/{**path}", ["GET", "HEAD"], registry.Serve);
        await app.StartAsync();
        registry.Host = new Uri(app.Urls.Single()).Authority.Replace("127.0.0.1", "localhost", StringComparison.Ordinal);
        return registry;
    }

    private IResult Serve(string path, HttpContext context)
    {
        if (path == $"{Repository}/manifests/{Tag}" || path == $"{Repository}/manifests/{Digest(_manifest)}")
        {
            context.Response.Headers["Docker-Content-Digest"] = Digest(_manifest);
            return Results.Bytes(_manifest, ManifestMediaType);
        }

        var blobPrefix = $"{Repository}/blobs/";
        if (path.StartsWith(blobPrefix, StringComparison.Ordinal) && _blobs.TryGetValue(path[blobPrefix.Length..], out var blob))
        {
            context.Response.Headers["Docker-Content-Digest"] = path[blobPrefix.Length..];
            return Results.Bytes(blob, "application/octet-stream");
        }

        return Results.NotFound();
    }

    private static string Digest(byte[] content) => "sha256:" + Convert.ToHexStringLower(SHA256.HashData(content));

    public ValueTask DisposeAsync() => _app.DisposeAsync();
}
