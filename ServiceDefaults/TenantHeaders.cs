using Microsoft.AspNetCore.Http;

namespace AspireAi.ServiceDefaults;

/// <summary>
/// The tenant contract between the gateway and the services behind it: the gateway strips these headers from every
/// incoming request and sets them from the authenticated caller. Services trust them because only the gateway can reach them.
/// </summary>
public static class TenantHeaders
{
    public const string TenantHeader = "X-AspireAi-Tenant";
    public const string KeyIdHeader = "X-AspireAi-Key-Id";

    /// <summary>The tenant used for requests that reach a service without the header (its own tools, direct calls in development).</summary>
    public const string DefaultTenant = "default";

    public static string Tenant(HttpContext context) =>
        context.Request.Headers[TenantHeader] is { Count: > 0 } values && !string.IsNullOrWhiteSpace(values[0])
            ? values[0]!
            : DefaultTenant;
}
