using System.Text.Json;
using AspireAi.ServiceDefaults;
using Microsoft.Extensions.Options;

namespace AspireAi.Agents.Definitions;

/// <summary><c>/v1/agents</c>: the caller's tenant's agent definitions.</summary>
internal static class AgentEndpoints
{
    public static void MapAgentEndpoints(this IEndpointRouteBuilder app)
    {
        app.MapGet("/v1/agents", async (HttpContext context, IAgentStore store, CancellationToken ct) =>
            Results.Json(new { @object = "list", data = await store.ListAsync(TenantHeaders.Tenant(context), ct) }));

        app.MapPost("/v1/agents", async (HttpContext context, JsonElement body, IAgentStore store, IOptions<AgentsOptions> options, CancellationToken ct) =>
        {
            var agent = AgentDefinitionParser.Parse(body);
            AgentDefinitionParser.ValidateConfigured(agent, options.Value);
            var tenant = TenantHeaders.Tenant(context);
            if (!await store.CreateAsync(tenant, agent, ct))
            {
                return OpenAiError.Result(409, $"An agent named '{agent.Name}' already exists; PUT /v1/agents/{agent.Name} replaces it.", "name", "agent_exists");
            }

            return Results.Json(await store.GetAsync(tenant, agent.Name, ct), statusCode: 201);
        });

        app.MapGet("/v1/agents/{name}", async (HttpContext context, string name, IAgentStore store, CancellationToken ct) =>
            await store.GetAsync(TenantHeaders.Tenant(context), name, ct) is { } agent
                ? Results.Json(agent)
                : NotFound(name));

        app.MapPut("/v1/agents/{name}", async (HttpContext context, string name, JsonElement body, IAgentStore store, IOptions<AgentsOptions> options,
            CancellationToken ct) =>
        {
            var agent = AgentDefinitionParser.Parse(body, name);
            AgentDefinitionParser.ValidateConfigured(agent, options.Value);
            var tenant = TenantHeaders.Tenant(context);
            var created = await store.UpsertAsync(tenant, agent, ct);
            return Results.Json(await store.GetAsync(tenant, name, ct), statusCode: created ? 201 : 200);
        });

        app.MapDelete("/v1/agents/{name}", async (HttpContext context, string name, IAgentStore store, CancellationToken ct) =>
            await store.DeleteAsync(TenantHeaders.Tenant(context), name, ct)
                ? Results.Json(new { name, @object = "agent.deleted", deleted = true })
                : NotFound(name));
    }

    private static IResult NotFound(string name) =>
        OpenAiError.Result(404, $"No agent named '{name}' exists for this tenant.", "name", "agent_not_found");
}
