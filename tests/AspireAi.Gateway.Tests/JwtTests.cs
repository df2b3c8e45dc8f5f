using System.Net;
using System.Net.Http.Json;
using AspireAi.Gateway.Tests.Support;
using Microsoft.IdentityModel.Tokens;

namespace AspireAi.Gateway.Tests;

/// <summary>Optional JWT bearer validation against an OIDC authority, beside API keys.</summary>
public sealed class JwtTests(TestStack stack)
{
    [Fact]
    public async Task A_valid_token_acts_for_its_tenant_claim_and_bad_tokens_get_401()
    {
        await using var authority = await new OidcAuthority().StartAsync();
        await using var gateway = GatewayApp.Start(stack, new Dictionary<string, string?>
        {
            ["Gateway:Jwt:Authority"] = authority.Issuer,
            ["Gateway:Jwt:Audience"] = OidcAuthority.Audience,
            ["Gateway:Jwt:RequireHttpsMetadata"] = "false",
            ["Gateway:Jwt:TenantClaim"] = "org",
        });

        using var client = gateway.Client(authority.Issue("alice", new Dictionary<string, object> { ["org"] = "jwt-tenant" }));
        await (await client.GetAsync("/v1/models")).JsonAsync(HttpStatusCode.OK);
        var marker = "jwt " + Guid.NewGuid();
        await (await client.PostAsJsonAsync("/v1/chat/completions", new
        {
            model = ScriptedUpstream.Model, messages = new[] { new { role = "user", content = marker } },
        })).JsonAsync(HttpStatusCode.OK);
        var (_, headers) = stack.Scripted.SelectMany(s => s.Requests).Single(r => r.Body.GetRawText().Contains(marker, StringComparison.Ordinal));
        Assert.Equal("jwt-tenant", Assert.Single(headers["X-AspireAi-Tenant"]));
        Assert.Equal("jwt:alice", Assert.Single(headers["X-AspireAi-Key-Id"]));

        using var noTenant = gateway.Client(authority.Issue("bob", new Dictionary<string, object>()));
        await (await noTenant.GetAsync("/v1/models")).ErrorAsync(HttpStatusCode.Unauthorized);
        using var expired = gateway.Client(authority.Issue("carol", new Dictionary<string, object> { ["org"] = "jwt-tenant" }, lifetime: TimeSpan.FromMinutes(-10)));
        await (await expired.GetAsync("/v1/models")).ErrorAsync(HttpStatusCode.Unauthorized);
        using var forged = gateway.Client(authority.Issue("mallory", new Dictionary<string, object> { ["org"] = "jwt-tenant" },
            signWith: new RsaSecurityKey(System.Security.Cryptography.RSA.Create(2048)) { KeyId = "test-key" }));
        await (await forged.GetAsync("/v1/models")).ErrorAsync(HttpStatusCode.Unauthorized);

        // API keys keep working beside JWTs, and a JWT is no master key.
        using var keyClient = await gateway.ClientForNewKeyAsync("jwt-keys");
        await (await keyClient.GetAsync("/v1/models")).JsonAsync(HttpStatusCode.OK);
        await (await client.GetAsync("/admin/keys")).ErrorAsync(HttpStatusCode.Forbidden);
    }
}
