using System.Security.Claims;
using System.Security.Cryptography;
using System.Text;
using System.Text.Encodings.Web;
using AspireAi.Gateway.Keys;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authentication.JwtBearer;
using Microsoft.AspNetCore.Authorization;
using Microsoft.Extensions.Options;

namespace AspireAi.Gateway.Auth;

/// <summary>Who a caller is, once authenticated: the claims the proxy turns into downstream tenant headers.</summary>
internal static class GatewayClaims
{
    public const string Tenant = "aspireai:tenant";
    public const string KeyId = "aspireai:key_id";
    public const string Scheme = "Bearer";
    public const string ApiKeyScheme = "ApiKey";
    public const string JwtScheme = "Jwt";
    public const string MasterKeyPolicy = "master-key";
}

internal sealed class GatewayAuthOptions : AuthenticationSchemeOptions
{
    /// <summary>The <c>gateway-master-key</c> parameter, given to the gateway as <c>Gateway:MasterKey</c>.</summary>
    public string? MasterKey { get; set; }
}

/// <summary>
/// Bearer authentication with the master key (administrator, acting for the default tenant) or an API key from
/// <see cref="IKeyStore"/> (through <see cref="KeyLookup"/>'s short cache). Revoked and unknown keys are refused alike.
/// </summary>
internal sealed class ApiKeyAuthenticationHandler(
    IOptionsMonitor<GatewayAuthOptions> options, ILoggerFactory logger, UrlEncoder encoder, KeyLookup keys)
    : AuthenticationHandler<GatewayAuthOptions>(options, logger, encoder)
{
    private static readonly Caller NoLimitsAdmin = new("master", ServiceDefaults.TenantHeaders.DefaultTenant, [], [], KeyLimits.None, IsAdmin: true);

    protected override async Task<AuthenticateResult> HandleAuthenticateAsync()
    {
        if (BearerToken.From(Request) is not { } presented)
        {
            return AuthenticateResult.NoResult();
        }

        if (Options.MasterKey is { Length: > 0 } master && FixedTimeEquals(presented, master))
        {
            return Success(NoLimitsAdmin, role: GatewayClaims.MasterKeyPolicy);
        }

        if (!presented.StartsWith(ApiKeySecrets.Prefix, StringComparison.Ordinal) || presented.Length > 256)
        {
            return AuthenticateResult.Fail("Invalid API key.");
        }

        var key = await keys.FindAsync(presented, Context.RequestAborted);
        if (key is null || key.Revoked)
        {
            return AuthenticateResult.Fail(key is null ? "Unknown API key." : "Revoked API key.");
        }

        return Success(new Caller(key.Id, key.Tenant, key.Scopes, key.Models, key.Limits, IsAdmin: false), role: null);
    }

    private AuthenticateResult Success(Caller caller, string? role)
    {
        Context.Features.Set(caller);
        List<Claim> claims = [new(GatewayClaims.Tenant, caller.Tenant), new(GatewayClaims.KeyId, caller.KeyId)];
        if (role is not null)
        {
            claims.Add(new Claim(ClaimTypes.Role, role));
        }

        var identity = new ClaimsIdentity(claims, Scheme.Name);
        return AuthenticateResult.Success(new AuthenticationTicket(new ClaimsPrincipal(identity), Scheme.Name));
    }

    protected override Task HandleChallengeAsync(AuthenticationProperties properties) =>
        OpenAiError.WriteAsync(Context, StatusCodes.Status401Unauthorized,
            Request.Headers.Authorization.Count == 0
                ? "You didn't provide an API key. Send it as 'Authorization: Bearer <key>'."
                : "Incorrect or revoked API key provided.",
            code: "invalid_api_key");

    protected override Task HandleForbiddenAsync(AuthenticationProperties properties) =>
        OpenAiError.WriteAsync(Context, StatusCodes.Status403Forbidden, "This key may not use this endpoint; it needs the master key.");

    /// <summary>Compares hashes, so the time taken says nothing about the master key's length or content.</summary>
    private static bool FixedTimeEquals(string a, string b) =>
        CryptographicOperations.FixedTimeEquals(SHA256.HashData(Encoding.UTF8.GetBytes(a)), SHA256.HashData(Encoding.UTF8.GetBytes(b)));
}

internal static class BearerToken
{
    public static string? From(HttpRequest request)
    {
        string? header = request.Headers.Authorization;
        return header is not null && header.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase) && header.Length > 7
            ? header[7..].Trim()
            : null;
    }

    /// <summary>A compact JWS has three base64url parts; an API key (<c>sk-…</c>) and the master key have no dots.</summary>
    public static bool LooksLikeJwt(string token) =>
        !token.StartsWith(ApiKeySecrets.Prefix, StringComparison.Ordinal) && token.Count(c => c == '.') == 2;
}

internal static class GatewayAuthenticationExtensions
{
    public static IServiceCollection AddGatewayAuthentication(this IServiceCollection services, IConfiguration configuration)
    {
        var jwt = configuration.GetSection(GatewayOptions.Section).Get<GatewayOptions>()?.Jwt ?? new JwtOptions();
        var jwtEnabled = !string.IsNullOrWhiteSpace(jwt.Authority);

        services.AddSingleton<KeyLookup>();
        var authentication = services.AddAuthentication(GatewayClaims.Scheme)
            // One scheme name for clients; it picks JWT validation for tokens shaped like one when an authority is configured.
            .AddPolicyScheme(GatewayClaims.Scheme, "API key, master key or JWT", policy => policy.ForwardDefaultSelector = context =>
                jwtEnabled && BearerToken.From(context.Request) is { } token && BearerToken.LooksLikeJwt(token)
                    ? GatewayClaims.JwtScheme
                    : GatewayClaims.ApiKeyScheme)
            .AddScheme<GatewayAuthOptions, ApiKeyAuthenticationHandler>(GatewayClaims.ApiKeyScheme,
                options => options.MasterKey = configuration["Gateway:MasterKey"]);
        if (jwtEnabled)
        {
            authentication.AddJwtBearer(GatewayClaims.JwtScheme, options => ConfigureJwt(options, jwt));
        }

        services.AddAuthorizationBuilder()
            .SetDefaultPolicy(new AuthorizationPolicyBuilder(GatewayClaims.Scheme).RequireAuthenticatedUser().Build())
            .AddPolicy(GatewayClaims.MasterKeyPolicy, policy => policy
                .AddAuthenticationSchemes(GatewayClaims.Scheme).RequireRole(GatewayClaims.MasterKeyPolicy));
        return services;
    }

    /// <summary>
    /// Tokens from the OIDC authority act for the tenant named by <c>Gateway:Jwt:TenantClaim</c>; a token without that claim
    /// is refused, since a tenant can never be guessed. Such callers get the default limits and every scope and model.
    /// </summary>
    private static void ConfigureJwt(JwtBearerOptions options, JwtOptions jwt)
    {
        options.Authority = jwt.Authority;
        options.RequireHttpsMetadata = jwt.RequireHttpsMetadata;
        options.MapInboundClaims = false;
        options.TokenValidationParameters.ValidateAudience = !string.IsNullOrEmpty(jwt.Audience);
        options.TokenValidationParameters.ValidAudience = jwt.Audience;
        options.Events = new JwtBearerEvents
        {
            OnTokenValidated = context =>
            {
                var principal = context.Principal!;
                if (principal.FindFirst(jwt.TenantClaim)?.Value is not { Length: > 0 } tenant)
                {
                    context.Fail($"The token has no '{jwt.TenantClaim}' claim naming the tenant.");
                    return Task.CompletedTask;
                }

                var subject = principal.FindFirst("sub")?.Value ?? "unknown";
                var caller = new Caller("jwt:" + subject, tenant, [], [], KeyLimits.None, IsAdmin: false);
                context.HttpContext.Features.Set(caller);
                ((ClaimsIdentity)principal.Identity!).AddClaims(
                    [new Claim(GatewayClaims.Tenant, tenant), new Claim(GatewayClaims.KeyId, caller.KeyId)]);
                return Task.CompletedTask;
            },
        };
    }
}
