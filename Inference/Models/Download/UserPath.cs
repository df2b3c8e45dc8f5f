namespace AspireAi.Inference.Models.Download;

/// <summary>
/// A file or folder path as the user typed it (<c>--model</c>, <c>--file</c>). A relative path is tried against this
/// process's working directory and then against the shell's (<c>PWD</c>): <c>dotnet run --project Inference</c> starts a
/// web project in its project folder, so <c>--model ../shared/models/x.gguf</c> typed in the repository's root named
/// nothing. The AppHost does the same for its path options (CommandLineOptions.GetPathOption).
/// </summary>
public static class UserPath
{
    /// <summary>The path of the existing file or folder <paramref name="path"/> names, or null when there is none.</summary>
    public static string? Find(string path) => Find(path, Environment.CurrentDirectory, Environment.GetEnvironmentVariable("PWD"));

    /// <summary>Where a relative <paramref name="path"/> was looked for, for an error message (empty for an absolute one).</summary>
    public static string Searched(string path) => Searched(path, Environment.CurrentDirectory, Environment.GetEnvironmentVariable("PWD"));

    internal static string? Find(string path, string currentDirectory, string? shellDirectory)
    {
        foreach (var directory in Bases(path, currentDirectory, shellDirectory))
        {
            var candidate = Path.GetFullPath(path, directory);
            if (File.Exists(candidate) || Directory.Exists(candidate))
            {
                return directory == currentDirectory ? path : candidate;
            }
        }

        return null;
    }

    internal static string Searched(string path, string currentDirectory, string? shellDirectory) =>
        Path.IsPathRooted(path) ? "" : $" (looked in {string.Join(" and in ", Bases(path, currentDirectory, shellDirectory))})";

    private static IEnumerable<string> Bases(string path, string currentDirectory, string? shellDirectory)
    {
        yield return currentDirectory;
        if (!Path.IsPathRooted(path) && shellDirectory is { Length: > 0 } && Path.IsPathRooted(shellDirectory)
            && Path.GetFullPath(shellDirectory) != Path.GetFullPath(currentDirectory) && Directory.Exists(shellDirectory))
        {
            yield return shellDirectory;
        }
    }
}
