using AspireAi.AppHost.Infrastructure;
using Microsoft.Extensions.Configuration;

namespace AspireAi.AppHost;

internal static class CommandLineOptions
{
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
