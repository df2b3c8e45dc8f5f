namespace AspireAi.AppHost.Infrastructure;

internal static class VolumeNames
{
    /// <summary>
    /// <c>aspireai.apphost-NAME-data</c>: the same on every machine. Aspire's default name carries a hash of the AppHost's
    /// path, and azd names the Container Apps storage (and its bicep outputs) after the volume, so a path-dependent name
    /// would not match the committed infrastructure (deploy/azure/infra).
    /// </summary>
    public static string VolumeName(this IDistributedApplicationBuilder builder, string resource) =>
        $"{builder.Environment.ApplicationName.ToLowerInvariant()}-{resource}-data";
}
