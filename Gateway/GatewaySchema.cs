namespace AspireAi.Gateway;

/// <summary>The schema of <c>gatewaydb</c>: API keys (hashes only) and usage records.</summary>
internal static class GatewaySchema
{
    public static readonly Migration[] Migrations =
    [
        new("0001_api_keys", """
            CREATE TABLE api_keys (
                id                  text PRIMARY KEY,
                key_hash            bytea NOT NULL UNIQUE,
                key_hint            text NOT NULL,
                tenant              text NOT NULL,
                name                text,
                scopes              text[] NOT NULL DEFAULT '{}',
                models              text[] NOT NULL DEFAULT '{}',
                requests_per_minute integer,
                tokens_per_minute   integer,
                token_budget        bigint,
                budget_period       text,
                created_at          timestamptz NOT NULL DEFAULT now(),
                revoked_at          timestamptz
            );
            CREATE INDEX api_keys_tenant ON api_keys (tenant);
            """),
        new("0002_usage_records", """
            CREATE TABLE usage_records (
                id                bigserial PRIMARY KEY,
                at                timestamptz NOT NULL,
                key_id            text NOT NULL,
                tenant            text NOT NULL,
                endpoint          text NOT NULL,
                model             text,
                prompt_tokens     integer NOT NULL,
                completion_tokens integer NOT NULL,
                latency_ms        real NOT NULL,
                status            integer NOT NULL,
                cache             text
            );
            CREATE INDEX usage_records_key_at ON usage_records (key_id, at);
            CREATE INDEX usage_records_tenant_at ON usage_records (tenant, at);
            """),
    ];
}
