namespace AspireAi.Inference.Tests.Support;

/// <summary>Where the repository and the shared model files are, found from the test binary's folder.</summary>
public static class TestPaths
{
    /// <summary>The folder holding <c>AspireAi.sln</c>.</summary>
    public static string RepositoryRoot { get; } = FindRoot();

    /// <summary><c>../shared/models</c> beside the checkout (read-only).</summary>
    public static string SharedModels => Path.GetFullPath(Path.Combine(RepositoryRoot, "..", "shared", "models"));

    public static string SharedModel(string fileName) => Path.Combine(SharedModels, fileName);

    /// <summary>Files committed under the test project's <c>TestData/</c> folder (copied next to the test binary).</summary>
    public static string TestData(params string[] parts) => Path.Combine([AppContext.BaseDirectory, "TestData", .. parts]);

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "AspireAi.sln")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException($"No AspireAi.sln above {AppContext.BaseDirectory}");
    }
}

/// <summary>A temporary folder deleted when disposed.</summary>
public sealed class TempDirectory : IDisposable
{
    public TempDirectory() => Directory.CreateDirectory(Path);

    public string Path { get; } = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "aspireai-tests-" + Guid.NewGuid().ToString("N"));

    public string File(string name) => System.IO.Path.Combine(Path, name);

    public void Dispose()
    {
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (IOException)
        {
            // A mapped file still open on another thread; the OS temp cleaner gets it.
        }
    }
}
