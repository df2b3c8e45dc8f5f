namespace AspireAi.Retrieval.Collections;

internal static class RetrievalSchema
{
    public static readonly Migration[] Migrations =
    [
        new("0001_collections", """
            CREATE TABLE collections (
                tenant     text NOT NULL,
                name       text NOT NULL,
                created_at timestamptz NOT NULL DEFAULT now(),
                PRIMARY KEY (tenant, name)
            )
            """),
    ];
}
