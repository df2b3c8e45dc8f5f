using AspireAi.ServiceDefaults;
using Npgsql;

namespace AspireAi.Agents.Definitions;

/// <summary><c>/v1/agents</c>: the caller's tenant's agent definitions.</summary>
internal static class AgentEndpoints
{
    public static void MapAgentEndpoints(this IEndpointRouteBuilder app)
    {
        app.MapGet("/v1/agents", async (HttpContext context, NpgsqlDataSource db, CancellationToken ct) =>
        {
            var tenant = TenantHeaders.Tenant(context);
            await using var command = db.CreateCommand("SELECT name, model, created_at FROM agents WHERE tenant = $1 ORDER BY name");
            command.Parameters.AddWithValue(tenant);
            await using var reader = await command.ExecuteReaderAsync(ct);
            var data = new List<object>();
            while (await reader.ReadAsync(ct))
            {
                data.Add(new
                {
                    name = reader.GetString(0),
                    model = reader.GetString(1),
                    created_at = reader.GetFieldValue<DateTimeOffset>(2).ToUnixTimeSeconds(),
                });
            }

            return Results.Json(new { @object = "list", data });
        });
    }
}
