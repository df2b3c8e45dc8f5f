using Microsoft.Playwright;

namespace AspireAi.TestSupport;

/// <summary>
/// Debian's Chromium driven by Playwright (Playwright's own browser download cannot work here), for tests of the web chat,
/// and the folder where they keep screenshots (<c>artifacts/NAME/</c> at the repository root).
/// </summary>
public static class HeadlessChromium
{
    public const string ExecutablePath = "/usr/bin/chromium";

    /// <summary>Skips the test with the fix when the browser is not installed.</summary>
    public static void SkipUnlessInstalled()
    {
        if (!File.Exists(ExecutablePath))
        {
            Assert.Skip($"{ExecutablePath} is missing: install Debian's chromium (tools/prerequisites.sh does with ASPIREAI_WITH_BROWSER=1).");
        }
    }

    /// <summary>Launches it headless; <c>--no-sandbox</c> because CI runs as root, where Chromium's sandbox refuses to start.</summary>
    public static Task<IBrowser> LaunchAsync(IPlaywright playwright) => playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions
    {
        ExecutablePath = ExecutablePath,
        Headless = true,
        Args = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"],
    });

    public static string ArtifactsFolder(string name)
    {
        var folder = Path.Combine(RepositoryPaths.Root, "artifacts", name);
        Directory.CreateDirectory(folder);
        return folder;
    }
}
