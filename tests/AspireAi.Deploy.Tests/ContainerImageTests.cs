using System.Formats.Tar;
using System.IO.Compression;
using System.Text.Json.Nodes;
using AspireAi.Deploy.Tests.Support;

namespace AspireAi.Deploy.Tests;

/// <summary>
/// The services' images from <c>dotnet publish -t:PublishContainer</c> (no Dockerfile, no Docker daemon: an image archive).
/// </summary>
public sealed class ContainerImageTests
{
    public static readonly TheoryData<string> Projects = ["Inference", "Retrieval", "Agents", "Gateway"];

    [Theory]
    [MemberData(nameof(Projects))]
    public async Task ServiceBuildsOnTheChiseledAspNetImage(string project)
    {
        // What the SDK resolves the base image to, from ContainerFamily, without pulling it.
        var result = await ProcessResult.RunAsync("dotnet",
            ["msbuild", Repository.PathOf(project, $"{project}.csproj"), "-t:ComputeContainerBaseImage",
                "-getProperty:ContainerBaseImage", "-getProperty:ContainerRepository", "-p:Configuration=Release", "-nologo"],
            TimeSpan.FromMinutes(2));
        Assert.True(result.ExitCode == 0, result.Output);
        var properties = JsonNode.Parse(result.Output)!["Properties"]!;
        // Inference needs ICU (tokenizers' Unicode normalization): the chiseled image's "extra" variant carries it.
        var family = project == "Inference" ? "noble-chiseled-extra" : "noble-chiseled";
        Assert.Equal($"mcr.microsoft.com/dotnet/aspnet:10.0-{family}", properties["ContainerBaseImage"]!.GetValue<string>());
        Assert.Equal($"aspireai/{project.ToLowerInvariant()}", properties["ContainerRepository"]!.GetValue<string>());
    }

    [Fact]
    public async Task InferenceImageRunsAsNonRootAndSeesTheNvidiaDriver()
    {
        var work = Directory.CreateTempSubdirectory("aspireai-image-").FullName;
        try
        {
            await using var registry = await StandInRegistry.StartAsync();
            var archive = Path.Combine(work, "inference.tar");
            // Its own artifacts folder: nothing of the checkout's bin/obj is touched while other test projects run.
            var result = await ProcessResult.RunAsync("dotnet",
                ["publish", Repository.PathOf("Inference", "Inference.csproj"), "-c", "Release", "-t:PublishContainer", "-nologo",
                    "--artifacts-path", Path.Combine(work, "artifacts"),
                    $"-p:ContainerBaseImage={registry.BaseImage}", $"-p:ContainerArchiveOutputPath={archive}", "-p:ContainerImageTag=test"],
                TimeSpan.FromMinutes(5),
                new Dictionary<string, string> { ["DOTNET_CONTAINER_INSECURE_REGISTRIES"] = registry.Host });
            Assert.True(result.ExitCode == 0, result.Output);

            var (image, appLayer) = ReadImage(archive);
            var config = image["config"]!;
            Assert.Equal(["dotnet", "/app/AspireAi.Inference.dll"], config["Entrypoint"]!.AsArray().Select(e => e!.GetValue<string>()));
            Assert.Contains("app/AspireAi.Inference.dll", appLayer);
            Assert.Contains("app/AspireAi.ServiceDefaults.dll", appLayer);
            Assert.Equal("/app/", config["WorkingDir"]!.GetValue<string>());
            Assert.Equal("1654", config["User"]!.GetValue<string>());
            var env = config["Env"]!.AsArray().Select(e => e!.GetValue<string>()).ToList();
            Assert.Contains("NVIDIA_VISIBLE_DEVICES=all", env);
            Assert.Contains("NVIDIA_DRIVER_CAPABILITIES=compute,utility", env);
            Assert.NotNull(config["ExposedPorts"]!["8080/tcp"]);
        }
        finally
        {
            Directory.Delete(work, recursive: true);
        }
    }

    /// <summary>
    /// The image configuration JSON inside the SDK's <c>docker load</c> tar (its manifest.json names it) and the files of
    /// the image's last layer, the application's.
    /// </summary>
    private static (JsonNode Config, IReadOnlyList<string> AppLayer) ReadImage(string archive)
    {
        var files = new Dictionary<string, byte[]>();
        using (var file = File.OpenRead(archive))
        using (var tar = new TarReader(file))
        {
            while (tar.GetNextEntry() is { DataStream: { } data } entry)
            {
                using var copy = new MemoryStream();
                data.CopyTo(copy);
                files[entry.Name] = copy.ToArray();
            }
        }

        var manifest = JsonNode.Parse(files["manifest.json"])![0]!;
        var layer = files[manifest["Layers"]!.AsArray()[^1]!.GetValue<string>()];
        Stream layerStream = new MemoryStream(layer);
        if (layer is [0x1f, 0x8b, ..])
        {
            layerStream = new GZipStream(layerStream, CompressionMode.Decompress);
        }

        var names = new List<string>();
        using (var layerTar = new TarReader(layerStream))
        {
            while (layerTar.GetNextEntry() is { } entry)
            {
                names.Add(entry.Name.TrimStart('.', '/'));
            }
        }

        return (JsonNode.Parse(files[manifest["Config"]!.GetValue<string>()])!, names);
    }
}
