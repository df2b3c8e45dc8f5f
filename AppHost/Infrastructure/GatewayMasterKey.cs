using System.Security.Cryptography;
using System.Text.Json.Nodes;

namespace AspireAi.AppHost.Infrastructure;

/// <summary>
/// The gateway's admin secret, the Aspire parameter <c>gateway-master-key</c>. Set it like any parameter
/// (<c>Parameters__gateway-master-key=…</c>, user secrets, appsettings). Unset in a local run, one is generated, kept in the
/// AppHost's user secrets (so it stays the same across runs) and printed once, when it is made.
/// </summary>
internal static class GatewayMasterKey
{
    public const string ParameterName = "gateway-master-key";
    private const string ConfigurationKey = $"Parameters:{ParameterName}";

    public static IResourceBuilder<ParameterResource> AddGatewayMasterKey(this IDistributedApplicationBuilder builder)
    {
        if (builder.ExecutionContext.IsRunMode && string.IsNullOrEmpty(builder.Configuration[ConfigurationKey]))
        {
            var key = "sk-aspireai-" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(24));
            if (SaveToUserSecrets(builder, key) is { } secretsFile)
            {
                Console.WriteLine($"Generated the gateway master key (shown once; kept in {secretsFile}):");
                Console.WriteLine($"  {key}");
                Console.WriteLine("Send it as 'Authorization: Bearer <key>' to the gateway. Set Parameters__gateway-master-key to choose your own.");
            }

            builder.Configuration[ConfigurationKey] = key;
        }

        return builder.AddParameter(ParameterName, secret: true);
    }

    /// <summary>Writes the key beside whatever the AppHost's user secrets already hold; null where there is no user-secrets id.</summary>
    private static string? SaveToUserSecrets(IDistributedApplicationBuilder builder, string key)
    {
        var id = builder.AppHostAssembly?.GetCustomAttributes(typeof(Microsoft.Extensions.Configuration.UserSecrets.UserSecretsIdAttribute), false)
            .OfType<Microsoft.Extensions.Configuration.UserSecrets.UserSecretsIdAttribute>().FirstOrDefault()?.UserSecretsId;
        if (id is null)
        {
            return null;
        }

        var path = Microsoft.Extensions.Configuration.UserSecrets.PathHelper.GetSecretsPathFromSecretsId(id);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        var secrets = File.Exists(path) ? JsonNode.Parse(File.ReadAllText(path)) as JsonObject ?? [] : [];
        secrets[ConfigurationKey] = key;
        var temporary = path + ".tmp";
        File.WriteAllText(temporary, secrets.ToJsonString(new System.Text.Json.JsonSerializerOptions { WriteIndented = true }));
        File.Move(temporary, path, overwrite: true);
        return path;
    }
}
