using System.Net;
using System.Net.Http.Json;
using AspireAi.Gateway.Tests.Support;
using Npgsql;

namespace AspireAi.Gateway.Tests;

/// <summary>Authentication and the admin API: keys stored as hashes, shown once, revoked within the cache bound.</summary>
public sealed class AuthTests(TestStack stack)
{
    private GatewayApp Gateway => stack.Gateway;

    [Fact]
    public async Task Requests_without_a_key_with_a_wrong_key_or_a_revoked_key_get_401()
    {
        using var anonymous = Gateway.Client(null);
        var error = await (await anonymous.GetAsync("/v1/models")).ErrorAsync(HttpStatusCode.Unauthorized);
        Assert.Equal("invalid_api_key", error.GetProperty("code").GetString());

        using var wrong = Gateway.Client("sk-" + new string('x', 43));
        await (await wrong.GetAsync("/v1/models")).ErrorAsync(HttpStatusCode.Unauthorized);
        using var notAKey = Gateway.Client("hello");
        await (await notAKey.PostAsJsonAsync("/v1/embeddings", new { model = TestStack.EmbeddingModel, input = "x" })).ErrorAsync(HttpStatusCode.Unauthorized);

        var (key, id) = await Gateway.CreateKeyAsync("auth-revoke");
        using var client = Gateway.Client(key);
        await (await client.GetAsync("/v1/models")).JsonAsync(HttpStatusCode.OK);

        using var admin = Gateway.Admin();
        var revoked = await (await admin.DeleteAsync($"/admin/keys/{id}")).JsonAsync(HttpStatusCode.OK);
        Assert.True(revoked.GetProperty("deleted").GetBoolean());
        // The replica that revoked forgets the key at once.
        await (await client.GetAsync("/v1/models")).ErrorAsync(HttpStatusCode.Unauthorized);
        await (await admin.DeleteAsync("/admin/keys/key_nope")).ErrorAsync(HttpStatusCode.NotFound, "id");
    }

    [Fact]
    public async Task A_revocation_reaches_another_gateway_replica_within_the_cache_period()
    {
        await using var other = GatewayApp.Start(stack, new Dictionary<string, string?> { ["Gateway:Keys:CacheSeconds"] = "1" });
        var (key, id) = await Gateway.CreateKeyAsync("auth-replicas");
        using var client = other.Client(key);
        await (await client.GetAsync("/v1/models")).JsonAsync(HttpStatusCode.OK); // now cached on the other replica

        using var admin = Gateway.Admin();
        await (await admin.DeleteAsync($"/admin/keys/{id}")).JsonAsync(HttpStatusCode.OK);
        await Task.Delay(TimeSpan.FromSeconds(1.2));
        await (await client.GetAsync("/v1/models")).ErrorAsync(HttpStatusCode.Unauthorized);
    }

    [Fact]
    public async Task The_admin_api_needs_the_master_key()
    {
        using var anonymous = Gateway.Client(null);
        await (await anonymous.GetAsync("/admin/keys")).ErrorAsync(HttpStatusCode.Unauthorized);
        await (await anonymous.PostAsJsonAsync("/admin/keys", new { tenant = "x" })).ErrorAsync(HttpStatusCode.Unauthorized);

        var (key, _) = await Gateway.CreateKeyAsync("auth-admin");
        using var tenantClient = Gateway.Client(key);
        await (await tenantClient.GetAsync("/admin/keys")).ErrorAsync(HttpStatusCode.Forbidden);
        await (await tenantClient.PostAsJsonAsync("/admin/keys", new { tenant = "auth-admin" })).ErrorAsync(HttpStatusCode.Forbidden);
        await (await tenantClient.DeleteAsync("/admin/keys/anything")).ErrorAsync(HttpStatusCode.Forbidden);
    }

    [Fact]
    public async Task Keys_are_shown_once_listed_without_secret_and_stored_only_as_hashes()
    {
        using var admin = Gateway.Admin();
        var created = await (await admin.PostAsJsonAsync("/admin/keys", new
        {
            tenant = "auth-store", name = "ci", scopes = new[] { "inference" }, models = new[] { "all-*" },
            limits = new { requests_per_minute = 10, tokens_per_minute = 1000, token_budget = 5000, budget_period = "day" },
        })).JsonAsync(HttpStatusCode.Created);
        var secret = created.GetProperty("key").GetString()!;
        var id = created.GetProperty("id").GetString()!;
        Assert.StartsWith("sk-", secret);
        Assert.True(secret.Length >= 40, secret);
        Assert.Equal(10, created.GetProperty("limits").GetProperty("requests_per_minute").GetInt32());

        var list = await (await admin.GetAsync("/admin/keys?tenant=auth-store")).JsonAsync(HttpStatusCode.OK);
        var listed = Assert.Single(list.GetProperty("data").EnumerateArray());
        Assert.Equal(id, listed.GetProperty("id").GetString());
        Assert.Equal(System.Text.Json.JsonValueKind.Null, listed.GetProperty("key").ValueKind);
        Assert.Equal(["inference"], listed.GetProperty("scopes").EnumerateArray().Select(s => s.GetString()));
        Assert.DoesNotContain(secret, list.ToString());

        // The database holds the SHA-256 of the key and nothing from which it could be rebuilt.
        await using var db = new NpgsqlConnection(stack.GatewayDb);
        await db.OpenAsync();
        await using var command = new NpgsqlCommand("SELECT key_hash, key_hint FROM api_keys WHERE id = $1", db) { Parameters = { new() { Value = id } } };
        await using var row = await command.ExecuteReaderAsync();
        Assert.True(await row.ReadAsync());
        Assert.Equal(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(secret)), (byte[])row[0]);
        Assert.StartsWith(((string)row[1]).TrimEnd('…'), secret, StringComparison.Ordinal);
        Assert.True(((string)row[1]).Length < 10);
    }

    [Theory]
    [InlineData("{}", "tenant")]
    [InlineData("{\"tenant\":\"has space\"}", "tenant")]
    [InlineData("{\"tenant\":\"t\",\"scopes\":[\"everything\"]}", "scopes")]
    [InlineData("{\"tenant\":\"t\",\"models\":\"gpt\"}", "models")]
    [InlineData("{\"tenant\":\"t\",\"limits\":{\"requests_per_minute\":-1}}", "limits.requests_per_minute")]
    [InlineData("{\"tenant\":\"t\",\"limits\":{\"token_budget\":100}}", "limits.budget_period")]
    [InlineData("{\"tenant\":\"t\",\"limits\":{\"token_budget\":100,\"budget_period\":\"week\"}}", "limits.budget_period")]
    public async Task Invalid_key_requests_name_the_field(string body, string param)
    {
        using var admin = Gateway.Admin();
        var response = await admin.PostAsync("/admin/keys", new StringContent(body, System.Text.Encoding.UTF8, "application/json"));
        await response.ErrorAsync(HttpStatusCode.BadRequest, param);
    }

    [Fact]
    public async Task Scopes_and_model_lists_restrict_what_a_key_may_use()
    {
        var (key, _) = await Gateway.CreateKeyAsync("auth-scopes", scopes: ["retrieval"]);
        using var client = Gateway.Client(key);
        await (await client.EmbedAsync("hello")).ErrorAsync(HttpStatusCode.Forbidden, "model");
        await (await client.GetAsync("/v1/collections")).JsonAsync(HttpStatusCode.OK);

        var (modelKey, _) = await Gateway.CreateKeyAsync("auth-models", models: [ScriptedUpstream.Model]);
        using var limited = Gateway.Client(modelKey);
        var error = await (await limited.EmbedAsync("hello")).ErrorAsync(HttpStatusCode.Forbidden, "model");
        Assert.Equal("model_not_allowed", error.GetProperty("code").GetString());
        var models = await (await limited.GetAsync("/v1/models")).JsonAsync(HttpStatusCode.OK);
        Assert.Equal([ScriptedUpstream.Model], models.GetProperty("data").EnumerateArray().Select(m => m.GetProperty("id").GetString()));
    }
}
