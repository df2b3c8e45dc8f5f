using AspireAi.AppHost.Infrastructure;
using Microsoft.Extensions.Configuration;

namespace AspireAi.AppHost;

internal static class CommandLineOptions
{
    /// <summary>What <c>--help</c> (or <c>-h</c>) prints instead of starting anything.</summary>
    public const string Usage = """
        usage: bash tools/run.sh [options]   (or: dotnet run --project AppHost -- [options])
          --infra containers|local|auto  Redis, PostgreSQL and Qdrant as containers, or this machine's redis-server and
                                         postgres (no Qdrant: Retrieval's embedded store); auto (default): containers where
                                         docker/podman info answers, else local
          --gateway-port N               the gateway's port (default 8080)
          --model PATH                   Inference's model: a GGUF file, a Hugging Face folder or hf:OWNER/REPO/FILE.gguf
                                         (default: stories15M, downloaded once)
          --state-dir DIR                where local mode keeps Redis's and PostgreSQL's data (default
                                         ~/.local/state/aspireai, /var/lib/aspireai as root)
          --inference-replicas N         local runs: N inference processes, balanced by the gateway (default 1)
        Publishing for azd and the Helm chart: dotnet run --project AppHost -- --publisher manifest --output-path DIR
        """;

    /// <summary>Whether the command line asks for <see cref="Usage"/>.</summary>
    public static bool AsksForHelp(IEnumerable<string> args) => args.Any(arg => arg is "--help" or "-h");

    /// <summary>An integer option (<c>--name N</c>): <paramref name="fallback"/> when absent, an error naming it when not a number.</summary>
    public static int GetIntegerOption(this IConfiguration configuration, string name, int fallback) => configuration[name] switch
    {
        null => fallback,
        var text when int.TryParse(text, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var value) => value,
        var text => throw new AppHostConfigurationException($"--{name} must be a whole number (got \"{text}\")."),
    };

    /// <summary>
    /// A path option made absolute against the folder the user typed the command in. <c>dotnet run --project AppHost</c>
    /// starts the AppHost in its project folder, so a relative <c>--model ../shared/…</c> resolved against the current
    /// directory pointed somewhere else; the shell's <c>PWD</c> still names the user's folder.
    /// </summary>
    public static string? GetPathOption(this IConfiguration configuration, string name)
    {
        var path = configuration[name];
        if (string.IsNullOrWhiteSpace(path))
        {
            return null;
        }

        var invokedFrom = Environment.GetEnvironmentVariable("PWD");
        return Path.GetFullPath(path, invokedFrom is { Length: > 0 } && Path.IsPathRooted(invokedFrom) && Directory.Exists(invokedFrom)
            ? invokedFrom
            : Environment.CurrentDirectory);
    }
}
