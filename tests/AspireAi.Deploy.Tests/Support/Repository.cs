using System.Diagnostics;
using System.Reflection;

namespace AspireAi.Deploy.Tests.Support;

internal static class Repository
{
    /// <summary>The checkout's root: the folder holding AspireAi.sln, found by walking up from the test's output folder.</summary>
    public static string Root { get; } = FindRoot();

    /// <summary>The configuration this test assembly was built in, so the AppHost beside it is the one we run.</summary>
    public static string Configuration { get; } = typeof(Repository).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>()
        .Single(a => a.Key == "Configuration").Value!;

    /// <summary>The Bicep compiler from the Azure.Bicep.CommandLine.linux-x64 package.</summary>
    public static string Bicep { get; } = typeof(Repository).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>()
        .Single(a => a.Key == "Bicep").Value!;

    public static string PathOf(params string[] parts) => Path.Combine([Root, .. parts]);

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "AspireAi.sln")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException($"No AspireAi.sln above {AppContext.BaseDirectory}.");
    }
}

public sealed record ProcessResult(int ExitCode, string Output)
{
    public static async Task<ProcessResult> RunAsync(string command, IEnumerable<string> args, TimeSpan timeout,
        IDictionary<string, string>? environment = null, string? workingDirectory = null)
    {
        var start = new ProcessStartInfo(command)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            WorkingDirectory = workingDirectory ?? Repository.Root,
        };
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        start.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        start.Environment["DOTNET_NOLOGO"] = "1";
        foreach (var (key, value) in environment ?? new Dictionary<string, string>())
        {
            start.Environment[key] = value;
        }

        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            await process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"'{command} {string.Join(' ', start.ArgumentList)}' ran past {timeout}: {await stdout}{await stderr}");
        }

        return new ProcessResult(process.ExitCode, await stdout + await stderr);
    }
}
