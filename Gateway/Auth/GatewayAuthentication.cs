using System.Security.Claims;
using System.Security.Cryptography;
using System.Text;
using System.Text.Encodings.Web;
using Microsoft.AspNetCore.Authentication;
using Microsoft.Extensions.Options;

namespace AspireAi.Gateway.Auth;

/// <summary>Who a caller is, once authenticated: the claims the proxy turns into downstream tenant headers.</summary>
internal static class GatewayClaims
{
    public const string Tenant = "aspireai:tenant";
    public const string KeyId = "aspireai:key_id";
    public const string Scheme = "Bearer";
    public const string MasterKeyPolicy = "master-key";
}

internal sealed class GatewayAuthOptions : AuthenticationSchemeOptions
{
    /// <summary>The <c>gateway-master-key</c> parameter, given to the gateway as <c>Gateway:MasterKey</c>.</summary>
    public string? MasterKey { get; set; }
}

/// <summary>
/// Bearer authentication for the gateway: the master key authenticates as the administrator of the default tenant.
/// API keys stored in PostgreSQL (the gateway issue) plug in here beside it.
/// </summary>
internal sealed class GatewayAuthenticationHandler(
    IOptionsMonitor<GatewayAuthOptions> options, ILoggerFactory logger, UrlEncoder encoder)
    : AuthenticationHandler<GatewayAuthOptions>(options, logger, encoder)
{
    protected override Task<AuthenticateResult> HandleAuthenticateAsync()
    {
        string? header = Request.Headers.Authorization;
        if (string.IsNullOrEmpty(header) || !header.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase))
        {
            return Task.FromResult(AuthenticateResult.NoResult());
        }

        var presented = header["Bearer ".Length..].Trim();
        if (Options.MasterKey is { Length: > 0 } master && FixedTimeEquals(presented, master))
        {
            var identity = new ClaimsIdentity(
                [
                    new Claim(GatewayClaims.Tenant, ServiceDefaults.TenantHeaders.DefaultTenant),
                    new Claim(GatewayClaims.KeyId, "master"),
                    new Claim(ClaimTypes.Role, GatewayClaims.MasterKeyPolicy),
                ],
                Scheme.Name);
            return Task.FromResult(AuthenticateResult.Success(new AuthenticationTicket(new ClaimsPrincipal(identity), Scheme.Name)));
        }

        return Task.FromResult(AuthenticateResult.Fail("Invalid API key."));
    }

    protected override Task HandleChallengeAsync(AuthenticationProperties properties) =>
        OpenAiError.WriteAsync(Context, StatusCodes.Status401Unauthorized,
            Request.Headers.Authorization.Count == 0
                ? "You didn't provide an API key. Send it as 'Authorization: Bearer <key>'."
                : "Incorrect API key provided.",
            code: "invalid_api_key");

    protected override Task HandleForbiddenAsync(AuthenticationProperties properties) =>
        OpenAiError.WriteAsync(Context, StatusCodes.Status403Forbidden, "This key may not use this endpoint.");

    private static bool FixedTimeEquals(string a, string b) =>
        CryptographicOperations.FixedTimeEquals(SHA256.HashData(Encoding.UTF8.GetBytes(a)), SHA256.HashData(Encoding.UTF8.GetBytes(b)));
}

internal static class GatewayAuthenticationExtensions
{
    public static IServiceCollection AddGatewayAuthentication(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddAuthentication(GatewayClaims.Scheme)
            .AddScheme<GatewayAuthOptions, GatewayAuthenticationHandler>(GatewayClaims.Scheme,
                options => options.MasterKey = configuration["Gateway:MasterKey"]);
        services.AddAuthorizationBuilder()
            .SetDefaultPolicy(new Microsoft.AspNetCore.Authorization.AuthorizationPolicyBuilder(GatewayClaims.Scheme)
                .RequireAuthenticatedUser().Build())
            .AddPolicy(GatewayClaims.MasterKeyPolicy, policy => policy.RequireRole(GatewayClaims.MasterKeyPolicy));
        return services;
    }
}
