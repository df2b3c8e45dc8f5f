using AspireAi.Inference.Models.Download;
using AspireAi.Inference.Tests.Support;

namespace AspireAi.Inference.Tests.Download;

/// <summary>Where the cache and the npm registry are taken from, and how progress is shown.</summary>
public sealed class DownloadSettingsTests : IDisposable
{
    private readonly TempDirectory _temp = new();

    public void Dispose() => _temp.Dispose();

    [Fact]
    public void Cache_directory_follows_the_override_then_xdg_then_home()
    {
        Func<string, string?> Env(params (string Key, string Value)[] values) => key => values.FirstOrDefault(v => v.Key == key).Value;

        Assert.Equal("/custom", ModelCache.DefaultDirectory(Env(("ASPIREAI_MODEL_CACHE", "/custom"), ("XDG_CACHE_HOME", "/xdg")), "/home/u"));
        Assert.Equal(Path.Combine("/xdg", "aspireai", "models"), ModelCache.DefaultDirectory(Env(("XDG_CACHE_HOME", "/xdg")), "/home/u"));
        Assert.Equal(Path.Combine("/home/u", ".cache", "aspireai", "models"), ModelCache.DefaultDirectory(Env(("XDG_CACHE_HOME", "")), "/home/u"));
    }

    [Fact]
    public void Npm_registry_follows_the_environment_then_npmrc_then_the_default()
    {
        var npmrc = _temp.File(".npmrc");
        File.WriteAllLines(npmrc, ["; a comment", "fund=false", "# registry=http://commented.example/", "registry = \"http://mirror.example/npm\"  ", "registry=http://second.example/"]);
        Func<string, string?> Env(params (string Key, string Value)[] values) => key => values.FirstOrDefault(v => v.Key == key).Value;

        Assert.Equal(new Uri("http://env.example/r/"), NpmRegistry.Resolve(Env(("npm_config_registry", "http://env.example/r")), npmrc));
        Assert.Equal(new Uri("http://upper.example/"), NpmRegistry.Resolve(Env(("NPM_CONFIG_REGISTRY", "http://upper.example/")), npmrc));
        Assert.Equal(new Uri("http://mirror.example/npm/"), NpmRegistry.Resolve(Env(), npmrc));
        var other = _temp.File("other.npmrc");
        File.WriteAllText(other, "registry=https://user.example/\n");
        Assert.Equal(new Uri("https://user.example/"), NpmRegistry.Resolve(Env(("npm_config_userconfig", other)), npmrc));
        Assert.Equal(NpmRegistry.Default, NpmRegistry.Resolve(Env(), _temp.File("absent.npmrc")));

        var e = Assert.Throws<ModelDownloadException>(() => NpmRegistry.Resolve(Env(("npm_config_registry", "ftp://x/")), npmrc));
        Assert.Contains("npm_config_registry", e.Message);
    }

    [Fact]
    public void Progress_is_a_line_per_tenth_when_not_a_terminal()
    {
        var output = new StringWriter();
        var progress = new ConsoleDownloadProgress(output, isTerminal: false);
        for (long done = 0; done <= 1000; done += 7)
        {
            progress.Report(new DownloadProgress("downloading x", done, 1000));
        }

        progress.Report(new DownloadProgress("downloading x", 1000, 1000));
        for (var t = 1; t <= 20; t++)
        {
            progress.Report(new DownloadProgress("converting x", t, 20, "tensors"));
        }

        var lines = output.ToString().Split(Environment.NewLine, StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(Enumerable.Range(0, 11).Select(i => $"downloading x: {i * 10}%"), lines.Take(11).Select(l => l[..l.IndexOf('%')] + "%"));
        Assert.Equal("downloading x: 100% (1.0 KiB of 1.0 KiB)", lines[10]);
        // The new stage starts its tenths again: 1/20 (5%), then one line per tenth up to 20/20.
        Assert.Equal("converting x: 5% (1 tensors of 20 tensors)", lines[11]);
        Assert.Equal(22, lines.Length);
        Assert.Equal("converting x: 100% (20 tensors of 20 tensors)", lines[^1]);
    }

    [Fact]
    public void Progress_is_a_redrawn_bar_on_a_terminal()
    {
        var output = new StringWriter();
        var progress = new ConsoleDownloadProgress(output, isTerminal: true);
        progress.Report(new DownloadProgress("downloading x", 0, 4 << 20));
        progress.Report(new DownloadProgress("downloading x", 2 << 20, 4 << 20));
        progress.Report(new DownloadProgress("downloading x", 4 << 20, 4 << 20));

        var text = output.ToString();
        Assert.Equal(3, text.Count(c => c == '\r'));
        Assert.Contains($"\rdownloading x [{new string('#', 15)}{new string('.', 15)}]  50% 2.0 MiB / 4.0 MiB", text);
        Assert.EndsWith($"[{new string('#', 30)}] 100% 4.0 MiB / 4.0 MiB{Environment.NewLine}", text);
    }
}
