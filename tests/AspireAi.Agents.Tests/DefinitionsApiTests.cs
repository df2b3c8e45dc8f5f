using System.Net;
using System.Net.Http.Json;
using AspireAi.TestSupport;

namespace AspireAi.Agents.Tests;

/// <summary><c>/v1/agents</c> against real PostgreSQL: create, read, replace, delete, tenant scoping and validation errors.</summary>
public sealed class DefinitionsApiTests(PostgresServer postgres) : IAsyncLifetime
{
    private AgentsHost _host = null!;

    public async ValueTask InitializeAsync() =>
        _host = new AgentsHost(await postgres.CreateDatabaseAsync("agents_defs"), new ScriptedModels((_, _, _) => ScriptedModels.Text("unused")));

    public async ValueTask DisposeAsync() => await _host.DisposeAsync();

    [Fact]
    public async Task Agents_are_created_listed_replaced_and_deleted_per_tenant()
    {
        var a = _host.ClientFor("tenant-a");
        var b = _host.ClientFor("tenant-b");
        var created = await (await a.PostAsJsonAsync("/v1/agents", new
        {
            name = "researcher", instructions = "Answer from documents.", model = "qwen3-0.6b", planning = true,
            tools = new object[] { "search_documents", new { type = "http_fetch", allowed_hosts = new[] { "Example.com" }, requires_approval = true } },
            limits = new { max_steps = 4, max_cost = 0.5 },
        })).JsonAsync(HttpStatusCode.Created);
        Assert.Equal("researcher", created.GetProperty("name").GetString());
        Assert.True(created.GetProperty("planning").GetBoolean());
        Assert.Equal(4, created.GetProperty("limits").GetProperty("max_steps").GetInt32());
        Assert.Equal(32000, created.GetProperty("limits").GetProperty("max_tokens").GetInt32());
        var fetch = created.GetProperty("tools")[1];
        Assert.Equal("example.com", fetch.GetProperty("allowed_hosts")[0].GetString());
        Assert.True(fetch.GetProperty("requires_approval").GetBoolean());

        await (await a.PostAsJsonAsync("/v1/agents", new { name = "researcher", instructions = "x", model = "m" })).ErrorAsync(HttpStatusCode.Conflict, "name");
        Assert.Empty((await (await b.GetAsync("/v1/agents")).JsonAsync(HttpStatusCode.OK)).GetProperty("data").EnumerateArray());
        await (await b.GetAsync("/v1/agents/researcher")).ErrorAsync(HttpStatusCode.NotFound, "name");

        var replaced = await (await a.PutAsJsonAsync("/v1/agents/researcher", new { instructions = "Be brief.", model = "other" })).JsonAsync(HttpStatusCode.OK);
        Assert.Equal("other", replaced.GetProperty("model").GetString());
        Assert.Empty(replaced.GetProperty("tools").EnumerateArray());
        Assert.Single((await (await a.GetAsync("/v1/agents")).JsonAsync(HttpStatusCode.OK)).GetProperty("data").EnumerateArray());

        await (await a.DeleteAsync("/v1/agents/researcher")).JsonAsync(HttpStatusCode.OK);
        await (await a.DeleteAsync("/v1/agents/researcher")).ErrorAsync(HttpStatusCode.NotFound, "name");
    }

    [Theory]
    [InlineData("""{"instructions":"x","model":"m"}""", "name")]
    [InlineData("""{"name":"bad name","instructions":"x","model":"m"}""", "name")]
    [InlineData("""{"name":"a","model":"m"}""", "instructions")]
    [InlineData("""{"name":"a","instructions":"x","model":"agent:b"}""", "model")]
    [InlineData("""{"name":"a","instructions":"x","model":"m","tools":["teleport"]}""", "tools[0].type")]
    [InlineData("""{"name":"a","instructions":"x","model":"m","tools":["http_fetch"]}""", "tools[0].allowed_hosts")]
    [InlineData("""{"name":"a","instructions":"x","model":"m","tools":[{"type":"sql_query"}]}""", "tools[0].connection")]
    [InlineData("""{"name":"a","instructions":"x","model":"m","tools":["files",{"type":"sql_query","connection":"not-configured"}]}""", "tools[1].connection")]
    [InlineData("""{"name":"a","instructions":"x","model":"m","limits":{"max_steps":0}}""", "limits.max_steps")]
    [InlineData("""{"name":"a","instructions":"x","model":"m","limits":{"max_naps":3}}""", "limits.max_naps")]
    public async Task Bad_definitions_get_an_error_naming_the_field(string body, string param)
    {
        var response = await _host.ClientFor("t").PostAsync("/v1/agents", new StringContent(body, System.Text.Encoding.UTF8, "application/json"));
        await response.ErrorAsync(HttpStatusCode.BadRequest, param);
    }
}
