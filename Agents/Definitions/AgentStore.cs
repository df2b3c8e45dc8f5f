using AspireAi.Agents.Storage;
using Npgsql;
using NpgsqlTypes;

namespace AspireAi.Agents.Definitions;

/// <summary>Agent definitions of each tenant.</summary>
public interface IAgentStore
{
    Task<IReadOnlyList<AgentDefinition>> ListAsync(string tenant, CancellationToken ct);
    Task<AgentDefinition?> GetAsync(string tenant, string name, CancellationToken ct);
    /// <summary>Creates the agent; false when one of that name exists.</summary>
    Task<bool> CreateAsync(string tenant, AgentDefinition agent, CancellationToken ct);
    /// <summary>Replaces or creates the agent; true when it was created.</summary>
    Task<bool> UpsertAsync(string tenant, AgentDefinition agent, CancellationToken ct);
    Task<bool> DeleteAsync(string tenant, string name, CancellationToken ct);
}

internal sealed class PostgresAgentStore(NpgsqlDataSource db) : IAgentStore
{
    private const string Columns = "name, description, instructions, model, planner_model, planning, tools, limits, created_at, updated_at";

    public async Task<IReadOnlyList<AgentDefinition>> ListAsync(string tenant, CancellationToken ct)
    {
        await using var command = db.CreateCommand($"SELECT {Columns} FROM agents WHERE tenant = $1 ORDER BY name");
        command.Parameters.AddWithValue(tenant);
        return await ReadAllAsync(command, ct);
    }

    public async Task<AgentDefinition?> GetAsync(string tenant, string name, CancellationToken ct)
    {
        await using var command = db.CreateCommand($"SELECT {Columns} FROM agents WHERE tenant = $1 AND name = $2");
        command.Parameters.AddWithValue(tenant);
        command.Parameters.AddWithValue(name);
        return (await ReadAllAsync(command, ct)).FirstOrDefault();
    }

    public async Task<bool> CreateAsync(string tenant, AgentDefinition agent, CancellationToken ct)
    {
        await using var command = db.CreateCommand("""
            INSERT INTO agents (tenant, name, description, instructions, model, planner_model, planning, tools, limits)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT DO NOTHING
            """);
        AddParameters(command, tenant, agent);
        return await command.ExecuteNonQueryAsync(ct) == 1;
    }

    public async Task<bool> UpsertAsync(string tenant, AgentDefinition agent, CancellationToken ct)
    {
        await using var command = db.CreateCommand("""
            INSERT INTO agents (tenant, name, description, instructions, model, planner_model, planning, tools, limits)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
            ON CONFLICT (tenant, name) DO UPDATE SET description = $3, instructions = $4, model = $5, planner_model = $6,
                planning = $7, tools = $8, limits = $9, updated_at = now()
            RETURNING (xmax = 0)
            """);
        AddParameters(command, tenant, agent);
        return (bool)(await command.ExecuteScalarAsync(ct))!;
    }

    public async Task<bool> DeleteAsync(string tenant, string name, CancellationToken ct)
    {
        await using var command = db.CreateCommand("DELETE FROM agents WHERE tenant = $1 AND name = $2");
        command.Parameters.AddWithValue(tenant);
        command.Parameters.AddWithValue(name);
        return await command.ExecuteNonQueryAsync(ct) == 1;
    }

    private static void AddParameters(NpgsqlCommand command, string tenant, AgentDefinition agent)
    {
        command.Parameters.AddWithValue(tenant);
        command.Parameters.AddWithValue(agent.Name);
        command.Parameters.AddWithValue(agent.Description);
        command.Parameters.AddWithValue(agent.Instructions);
        command.Parameters.AddWithValue(agent.Model);
        command.Parameters.AddWithValue((object?)agent.PlannerModel ?? DBNull.Value);
        command.Parameters.AddWithValue(agent.Planning);
        command.Parameters.AddWithValue(NpgsqlDbType.Jsonb, Json.Serialize(agent.Tools));
        command.Parameters.AddWithValue(NpgsqlDbType.Jsonb, Json.Serialize(agent.Limits));
    }

    private static async Task<List<AgentDefinition>> ReadAllAsync(NpgsqlCommand command, CancellationToken ct)
    {
        await using var reader = await command.ExecuteReaderAsync(ct);
        var agents = new List<AgentDefinition>();
        while (await reader.ReadAsync(ct))
        {
            agents.Add(new AgentDefinition
            {
                Name = reader.GetString(0),
                Description = reader.GetString(1),
                Instructions = reader.GetString(2),
                Model = reader.GetString(3),
                PlannerModel = reader.IsDBNull(4) ? null : reader.GetString(4),
                Planning = reader.GetBoolean(5),
                Tools = Json.Deserialize<List<ToolSpec>>(reader.GetString(6)),
                Limits = Json.Deserialize<RunLimits>(reader.GetString(7)),
                CreatedAt = reader.GetFieldValue<DateTimeOffset>(8).ToUnixTimeSeconds(),
                UpdatedAt = reader.GetFieldValue<DateTimeOffset>(9).ToUnixTimeSeconds(),
            });
        }

        return agents;
    }
}
