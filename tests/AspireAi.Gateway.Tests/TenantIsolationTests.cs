using System.Net;
using System.Net.Http.Json;
using AspireAi.Gateway.Tests.Support;
using Npgsql;

namespace AspireAi.Gateway.Tests;

/// <summary>
/// A key acts for its tenant only: through the gateway, against the real Retrieval and Agents apps, tenant B never sees
/// tenant A's collections or agents, and a forged tenant header changes nothing.
/// </summary>
public sealed class TenantIsolationTests(TestStack stack)
{
    [Fact]
    public async Task Tenant_b_cannot_list_read_search_or_delete_tenant_a_collections_even_with_a_forged_header()
    {
        using var a = await stack.Gateway.ClientForNewKeyAsync("iso-a");
        using var b = await stack.Gateway.ClientForNewKeyAsync("iso-b");
        await (await a.PutAsync("/v1/collections/secrets", null)).JsonAsync(HttpStatusCode.Created);
        await (await a.PostAsJsonAsync("/v1/collections/secrets/documents", new { id = "plan", text = "The launch code is tangerine." }))
            .JsonAsync(HttpStatusCode.Created);

        var listA = await (await a.GetAsync("/v1/collections")).JsonAsync(HttpStatusCode.OK);
        Assert.Contains("secrets", listA.GetProperty("data").EnumerateArray().Select(c => c.GetProperty("name").GetString()));

        b.DefaultRequestHeaders.Add("X-AspireAi-Tenant", "iso-a"); // forged: the gateway must drop it
        b.DefaultRequestHeaders.Add("X-AspireAi-Key-Id", "someone-else");
        var listB = await (await b.GetAsync("/v1/collections")).JsonAsync(HttpStatusCode.OK);
        Assert.DoesNotContain("secrets", listB.GetProperty("data").EnumerateArray().Select(c => c.GetProperty("name").GetString()));
        await (await b.GetAsync("/v1/collections/secrets")).ErrorAsync(HttpStatusCode.NotFound);
        await (await b.GetAsync("/v1/collections/secrets/documents/plan")).ErrorAsync(HttpStatusCode.NotFound);
        await (await b.PostAsJsonAsync("/v1/collections/secrets/search", new { query = "launch code" })).ErrorAsync(HttpStatusCode.NotFound);
        await (await b.DeleteAsync("/v1/collections/secrets")).ErrorAsync(HttpStatusCode.NotFound);

        var search = await (await a.PostAsJsonAsync("/v1/collections/secrets/search", new { query = "launch code" })).JsonAsync(HttpStatusCode.OK);
        Assert.Contains("tangerine", search.GetProperty("results")[0].GetProperty("text").GetString());
    }

    [Fact]
    public async Task Tenant_b_cannot_see_tenant_a_agents()
    {
        // Agents has no create endpoint yet: the definition is put in its database, as its own API would.
        await using (var db = new NpgsqlConnection(stack.AgentsDb))
        {
            await db.OpenAsync();
            await using var insert = new NpgsqlCommand(
                "INSERT INTO agents (tenant, name, instructions, model) VALUES ('iso-agents-a', 'helper', 'Be brief.', 'scripted-chat')", db);
            await insert.ExecuteNonQueryAsync();
        }

        using var a = await stack.Gateway.ClientForNewKeyAsync("iso-agents-a");
        using var b = await stack.Gateway.ClientForNewKeyAsync("iso-agents-b");
        b.DefaultRequestHeaders.Add("X-AspireAi-Tenant", "iso-agents-a");
        var listA = await (await a.GetAsync("/v1/agents")).JsonAsync(HttpStatusCode.OK);
        Assert.Equal(["helper"], listA.GetProperty("data").EnumerateArray().Select(x => x.GetProperty("name").GetString()));
        var listB = await (await b.GetAsync("/v1/agents")).JsonAsync(HttpStatusCode.OK);
        Assert.Empty(listB.GetProperty("data").EnumerateArray());
    }

    [Fact]
    public async Task Tenant_b_can_neither_read_nor_post_to_tenant_a_thread_even_with_a_forged_header()
    {
        using var a = await stack.Gateway.ClientForNewKeyAsync("iso-threads-a");
        using var b = await stack.Gateway.ClientForNewKeyAsync("iso-threads-b");
        b.DefaultRequestHeaders.Add("X-AspireAi-Tenant", "iso-threads-a"); // forged: the gateway must drop it
        var thread = (await (await a.PostAsync("/v1/threads", null)).JsonAsync(HttpStatusCode.Created)).GetProperty("id").GetString();

        // The owner reads it (an empty conversation so far); the other tenant gets 404 for the thread, its messages and its runs.
        var messages = await (await a.GetAsync($"/v1/threads/{thread}/messages")).JsonAsync(HttpStatusCode.OK);
        Assert.Equal("list", messages.GetProperty("object").GetString());
        await (await b.GetAsync($"/v1/threads/{thread}")).ErrorAsync(HttpStatusCode.NotFound, "thread_id");
        await (await b.GetAsync($"/v1/threads/{thread}/messages")).ErrorAsync(HttpStatusCode.NotFound, "thread_id");
        await (await b.GetAsync($"/v1/threads/{thread}/runs")).ErrorAsync(HttpStatusCode.NotFound, "thread_id");
        await (await b.PostAsJsonAsync($"/v1/threads/{thread}/runs", new { agent = "helper", input = "Read me the secrets.", stream = false }))
            .ErrorAsync(HttpStatusCode.NotFound, "thread_id");
        await (await b.DeleteAsync($"/v1/threads/{thread}")).ErrorAsync(HttpStatusCode.NotFound, "thread_id");

        // Nothing B tried changed A's thread: it still exists, with no run started on it.
        await (await a.GetAsync($"/v1/threads/{thread}")).JsonAsync(HttpStatusCode.OK);
        var runs = await (await a.GetAsync($"/v1/threads/{thread}/runs")).JsonAsync(HttpStatusCode.OK);
        Assert.Empty(runs.GetProperty("data").EnumerateArray());
    }

    [Fact]
    public async Task Upstreams_receive_the_key_tenant_and_id_and_never_the_client_credentials_or_forged_headers()
    {
        var (key, id) = await stack.Gateway.CreateKeyAsync("iso-headers");
        using var client = stack.Gateway.Client(key);
        client.DefaultRequestHeaders.Add("X-AspireAi-Tenant", "root");
        var marker = Guid.NewGuid().ToString();
        await (await client.PostAsJsonAsync("/v1/chat/completions", new
        {
            model = ScriptedUpstream.Model,
            messages = new[] { new { role = "user", content = marker } },
        })).JsonAsync(HttpStatusCode.OK);

        var (_, headers) = stack.Scripted.SelectMany(s => s.Requests)
            .Single(r => r.Body.GetProperty("messages")[0].GetProperty("content").GetString() == marker);
        Assert.Equal("iso-headers", Assert.Single(headers["X-AspireAi-Tenant"]));
        Assert.Equal(id, Assert.Single(headers["X-AspireAi-Key-Id"]));
        Assert.False(headers.ContainsKey("Authorization"));
    }
}
