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
        // A document row is the switch that makes one version of a document visible: its chunks are written first under
        // their content hash, then this row names that hash in one statement; search drops chunks of any other version.
        new("0002_documents", """
            ALTER TABLE collections ADD COLUMN embedding_model text NOT NULL DEFAULT 'all-MiniLM-L6-v2';
            CREATE TABLE documents (
                tenant       text NOT NULL,
                collection   text NOT NULL,
                id           text NOT NULL,
                content_hash text NOT NULL,
                content_type text NOT NULL,
                chunk_count  int NOT NULL,
                bytes        bigint NOT NULL,
                metadata     jsonb NOT NULL DEFAULT '{}',
                created_at   timestamptz NOT NULL DEFAULT now(),
                updated_at   timestamptz NOT NULL DEFAULT now(),
                PRIMARY KEY (tenant, collection, id),
                FOREIGN KEY (tenant, collection) REFERENCES collections (tenant, name) ON DELETE CASCADE
            );
            CREATE TABLE ingestions (
                id           text PRIMARY KEY,
                tenant       text NOT NULL,
                collection   text NOT NULL,
                document_id  text NOT NULL,
                content_hash text NOT NULL,
                status       text NOT NULL,
                chunks_total int NOT NULL,
                chunks_done  int NOT NULL DEFAULT 0,
                error        text,
                retry_at     timestamptz,
                work         jsonb NOT NULL,
                created_at   timestamptz NOT NULL DEFAULT now(),
                updated_at   timestamptz NOT NULL DEFAULT now()
            );
            CREATE INDEX ingestions_pending ON ingestions (status) WHERE status IN ('queued', 'running', 'waiting');
            """),
        // The embedded vector store's records (local mode): PostgreSQL is their system of record, the in-memory index is
        // rebuilt from here at start; tsv gives the index each chunk's English lexemes for BM25. Unused when Qdrant holds the vectors.
        new("0003_embedded_chunks", """
            CREATE TABLE chunks (
                seq              bigserial,
                id               uuid PRIMARY KEY,
                tenant           text NOT NULL,
                collection       text NOT NULL,
                document_id      text NOT NULL,
                document_version text NOT NULL,
                chunk_index      int NOT NULL,
                text             text NOT NULL,
                metadata         jsonb NOT NULL DEFAULT '{}',
                embedding        real[] NOT NULL,
                tsv              tsvector GENERATED ALWAYS AS (to_tsvector('english', text)) STORED
            );
            CREATE INDEX chunks_document ON chunks (tenant, collection, document_id);
            """),
    ];
}
