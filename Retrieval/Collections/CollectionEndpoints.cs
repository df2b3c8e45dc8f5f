using AspireAi.ServiceDefaults;
using Npgsql;

namespace AspireAi.Retrieval.Collections;

/// <summary><c>/v1/collections</c>: the caller's tenant's collections.</summary>
internal static class CollectionEndpoints
{
    public static void MapCollectionEndpoints(this IEndpointRouteBuilder app)
    {
        app.MapGet("/v1/collections", async (HttpContext context, NpgsqlDataSource db, CancellationToken ct) =>
        {
            var tenant = TenantHeaders.Tenant(context);
            await using var command = db.CreateCommand("SELECT name, created_at FROM collections WHERE tenant = $1 ORDER BY name");
            command.Parameters.AddWithValue(tenant);
            await using var reader = await command.ExecuteReaderAsync(ct);
            var data = new List<object>();
            while (await reader.ReadAsync(ct))
            {
                data.Add(new { name = reader.GetString(0), created_at = reader.GetFieldValue<DateTimeOffset>(1).ToUnixTimeSeconds() });
            }

            return Results.Json(new { @object = "list", data });
        });
    }
}
