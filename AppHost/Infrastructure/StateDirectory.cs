namespace AspireAi.AppHost.Infrastructure;

/// <summary>
/// Where local mode keeps Redis and PostgreSQL data across runs: <c>--state-dir</c>, else
/// <c>$XDG_STATE_HOME/aspireai</c> (<c>~/.local/state/aspireai</c>). As root, PostgreSQL runs as the unprivileged
/// <c>postgres</c> user, who cannot enter root's home, so the default moves to <c>/var/lib/aspireai</c>.
/// </summary>
internal static class StateDirectory
{
    public static string Resolve(string? configured)
    {
        if (!string.IsNullOrWhiteSpace(configured))
        {
            return configured;
        }

        if (Environment.IsPrivilegedProcess && !OperatingSystem.IsWindows())
        {
            return "/var/lib/aspireai";
        }

        var stateHome = Environment.GetEnvironmentVariable("XDG_STATE_HOME");
        if (string.IsNullOrEmpty(stateHome))
        {
            stateHome = Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".local", "state");
        }

        return Path.Combine(stateHome, "aspireai");
    }
}
