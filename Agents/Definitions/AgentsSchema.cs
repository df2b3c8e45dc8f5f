namespace AspireAi.Agents.Definitions;

internal static class AgentsSchema
{
    public static readonly Migration[] Migrations =
    [
        new("0001_agents", """
            CREATE TABLE agents (
                tenant       text NOT NULL,
                name         text NOT NULL,
                instructions text NOT NULL,
                model        text NOT NULL,
                created_at   timestamptz NOT NULL DEFAULT now(),
                PRIMARY KEY (tenant, name)
            )
            """),
    ];
}
