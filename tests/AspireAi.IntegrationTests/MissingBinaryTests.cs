using System.Diagnostics;

namespace AspireAi.IntegrationTests;

/// <summary>Local mode on a machine without redis-server: one actionable message and a failed exit, never a hang.</summary>
public sealed class MissingBinaryTests
{
    [Fact]
    public async Task Local_mode_without_redis_server_names_the_package_to_install()
    {
        // ProjectPath names the AppHost's project folder (or, in some SDKs, its .csproj).
        var appHostFolder = Directory.Exists(Projects.AppHost.ProjectPath)
            ? Projects.AppHost.ProjectPath
            : Path.GetDirectoryName(Projects.AppHost.ProjectPath)!;
        var appHostDll = Path.Combine(appHostFolder, "bin",
            Path.GetFileName(Path.GetDirectoryName(Path.GetDirectoryName(typeof(MissingBinaryTests).Assembly.Location)))!,
            "net10.0", "AspireAi.AppHost.dll");
        Assert.True(File.Exists(appHostDll), $"AppHost not built at {appHostDll}");

        // An empty PATH stands for a machine without redis-server (the AppHost is started by its full path).
        var emptyPath = Directory.CreateTempSubdirectory("aspireai-empty-path-").FullName;
        try
        {
            await RunWithoutRedisAsync(appHostDll, emptyPath);
        }
        finally
        {
            Directory.Delete(emptyPath, recursive: true);
        }
    }

    private static async Task RunWithoutRedisAsync(string appHostDll, string emptyPath)
    {
        var start = new ProcessStartInfo(Environment.ProcessPath!.EndsWith("dotnet", StringComparison.Ordinal)
            ? Environment.ProcessPath : "/usr/bin/dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        foreach (var arg in new[] { appHostDll, "--infra", "local", "--state-dir", Path.Combine(emptyPath, "state") })
        {
            start.ArgumentList.Add(arg);
        }

        start.Environment["PATH"] = emptyPath;
        start.Environment["ASPIRE_ALLOW_UNSECURED_TRANSPORT"] = "true";
        start.Environment["Parameters__gateway-master-key"] = "unused";

        using var process = Process.Start(start)!;
        var stderr = process.StandardError.ReadToEndAsync(TestContext.Current.CancellationToken);
        var stdout = process.StandardOutput.ReadToEndAsync(TestContext.Current.CancellationToken);
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        timeout.CancelAfter(TimeSpan.FromMinutes(1));
        await process.WaitForExitAsync(timeout.Token);

        var message = await stderr;
        Assert.NotEqual(0, process.ExitCode);
        Assert.Contains("'redis-server' was not found", message);
        Assert.Contains("apt-get install -y redis-server", message);
        Assert.DoesNotContain("   at ", message + await stdout); // no stack trace
    }
}
