namespace AspireAi.AppHost.Infrastructure;

/// <summary>Finds the executables that local mode runs, or says exactly what to install.</summary>
internal static class LocalBinaries
{
    /// <summary>The full path of <paramref name="name"/> on PATH, or in the extra folders given; null when absent.</summary>
    public static string? Find(string name, params IEnumerable<string> extraFolders)
    {
        var folders = (Environment.GetEnvironmentVariable("PATH") ?? "")
            .Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries)
            .Concat(extraFolders);
        foreach (var folder in folders)
        {
            var candidate = Path.Combine(folder, name);
            if (File.Exists(candidate))
            {
                return candidate;
            }
        }

        return null;
    }

    /// <summary>Like <see cref="Find"/>, but a missing binary is an actionable error naming the package that provides it.</summary>
    public static string Require(string name, string package, string purpose, params IEnumerable<string> extraFolders) =>
        Find(name, extraFolders) ?? throw new AppHostConfigurationException(
            $"'{name}' was not found on PATH{(extraFolders.Any() ? " or in " + string.Join(", ", extraFolders) : "")}. " +
            $"Local mode (--infra local) runs {purpose} from this machine's own binaries. " +
            $"Install it with: sudo apt-get install -y {package}  (or run with --infra containers where Docker or Podman is available).");

    /// <summary>Debian and Ubuntu keep PostgreSQL's server binaries off PATH, in /usr/lib/postgresql/VERSION/bin.</summary>
    public static IEnumerable<string> PostgresFolders()
    {
        const string root = "/usr/lib/postgresql";
        if (!Directory.Exists(root))
        {
            return [];
        }

        return Directory.GetDirectories(root)
            .Select(dir => (dir, version: int.TryParse(Path.GetFileName(dir), out var v) ? v : -1))
            .OrderByDescending(x => x.version)
            .Select(x => Path.Combine(x.dir, "bin"));
    }
}
