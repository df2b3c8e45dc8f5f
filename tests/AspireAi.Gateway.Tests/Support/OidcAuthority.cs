using System.Security.Claims;
using System.Security.Cryptography;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace AspireAi.Gateway.Tests.Support;

/// <summary>
/// A minimal OIDC authority on loopback — discovery document and JWKS, the two things a JWT bearer validator fetches — that
/// signs tokens with its own RSA key. Scripted because the test must mint tokens with chosen claims, keys and expiry; no
/// identity server runs here.
/// </summary>
public sealed class OidcAuthority : IAsyncDisposable
{
    public const string Audience = "aspireai";
    private readonly RSA _rsa = RSA.Create(2048);
    private WebApplication? _app;

    /// <summary>Its address, once started (the loopback port the kernel gave at bind time): the tokens' issuer.</summary>
    public string Issuer { get; private set; } = "";

    public RsaSecurityKey Key => new(_rsa) { KeyId = "test-key" };

    public async Task<OidcAuthority> StartAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        _app = builder.Build();
        _app.MapGet("/.well-known/openid-configuration", () => Results.Json(new { issuer = Issuer, jwks_uri = $"{Issuer}/jwks" }));
        _app.MapGet("/jwks", () =>
        {
            var jwk = JsonWebKeyConverter.ConvertFromRSASecurityKey(new RsaSecurityKey(_rsa.ExportParameters(false)) { KeyId = "test-key" });
            return Results.Json(new { keys = new[] { new { kty = jwk.Kty, kid = jwk.Kid, use = "sig", alg = "RS256", n = jwk.N, e = jwk.E } } });
        });
        await _app.StartAsync();
        Issuer = _app.Urls.First().TrimEnd('/');
        return this;
    }

    /// <summary>A signed token for <paramref name="subject"/> with <paramref name="claims"/>; another key or expiry on request.</summary>
    public string Issue(string subject, IDictionary<string, object> claims, SecurityKey? signWith = null, TimeSpan? lifetime = null)
    {
        var now = DateTime.UtcNow;
        var expires = now + (lifetime ?? TimeSpan.FromMinutes(5));
        return new JsonWebTokenHandler().CreateToken(new SecurityTokenDescriptor
        {
            Issuer = Issuer,
            Audience = Audience,
            Subject = new ClaimsIdentity([new Claim("sub", subject)]),
            Claims = claims,
            IssuedAt = expires < now ? expires.AddMinutes(-10) : now,
            NotBefore = expires < now ? expires.AddMinutes(-10) : now,
            Expires = expires,
            SigningCredentials = new SigningCredentials(signWith ?? Key, SecurityAlgorithms.RsaSha256),
        });
    }

    public async ValueTask DisposeAsync()
    {
        if (_app is not null)
        {
            await _app.DisposeAsync();
        }

        _rsa.Dispose();
    }
}
