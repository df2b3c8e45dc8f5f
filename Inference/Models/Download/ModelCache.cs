namespace AspireAi.Inference.Models.Download;

/// <summary>Where downloaded and converted models are kept.</summary>
public static class ModelCache
{
    /// <summary>
    /// <c>$ASPIREAI_MODEL_CACHE</c> when set; else <c>$XDG_CACHE_HOME/aspireai/models</c>; else <c>~/.cache/aspireai/models</c>
    /// (the XDG base-directory convention, which Hugging Face's and pip's caches follow too).
    /// </summary>
    public static string DefaultDirectory() =>
        DefaultDirectory(Environment.GetEnvironmentVariable, Environment.GetFolderPath(Environment.SpecialFolder.UserProfile));

    internal static string DefaultDirectory(Func<string, string?> environment, string home)
    {
        if (environment("ASPIREAI_MODEL_CACHE") is { Length: > 0 } explicitDirectory)
        {
            return explicitDirectory;
        }

        var cacheHome = environment("XDG_CACHE_HOME") is { Length: > 0 } xdg ? xdg : Path.Combine(home, ".cache");
        return Path.Combine(cacheHome, "aspireai", "models");
    }
}
