namespace AspireAi.TestSupport;

/// <summary>Where the checkout is (the folder holding <c>AspireAi.sln</c>), found from the test binary's folder, and the shared model files beside it.</summary>
public static class RepositoryPaths
{
    public static string Root { get; } = FindRoot();

    /// <summary>A file of <c>../shared/models</c> beside the checkout (as CI lays it out), or a clear error when it is missing.</summary>
    public static string SharedModel(string file)
    {
        var path = Path.GetFullPath(Path.Combine(Root, "..", "shared", "models", file));
        return File.Exists(path)
            ? path
            : throw new InvalidOperationException($"The shared model {file} is missing: expected ../shared/models beside the checkout ({path}).");
    }

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "AspireAi.sln")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException($"No AspireAi.sln above {AppContext.BaseDirectory}: tests run from a build of the checkout.");
    }
}
