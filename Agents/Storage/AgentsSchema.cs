namespace AspireAi.Agents.Storage;

/// <summary>The agents database (<c>agentsdb</c>): definitions, threads and their messages, runs with events, step checkpoints and tool calls.</summary>
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
        new("0002_definitions_threads_runs", """
            ALTER TABLE agents
                ADD COLUMN description   text NOT NULL DEFAULT '',
                ADD COLUMN planner_model text,
                ADD COLUMN planning      boolean NOT NULL DEFAULT false,
                ADD COLUMN tools         jsonb NOT NULL DEFAULT '[]',
                ADD COLUMN limits        jsonb NOT NULL DEFAULT '{}',
                ADD COLUMN updated_at    timestamptz NOT NULL DEFAULT now();

            CREATE TABLE threads (
                id         text PRIMARY KEY,
                tenant     text NOT NULL,
                metadata   jsonb NOT NULL DEFAULT '{}',
                created_at timestamptz NOT NULL DEFAULT now()
            );
            CREATE INDEX threads_tenant ON threads (tenant);

            -- Episodic memory: each run's user input and final answer, in order.
            CREATE TABLE messages (
                thread_id  text NOT NULL REFERENCES threads (id) ON DELETE CASCADE,
                seq        bigint GENERATED ALWAYS AS IDENTITY,
                role       text NOT NULL,
                message    jsonb NOT NULL,
                run_id     text,
                created_at timestamptz NOT NULL DEFAULT now(),
                PRIMARY KEY (thread_id, seq)
            );

            CREATE TABLE runs (
                id           text PRIMARY KEY,
                tenant       text NOT NULL,
                thread_id    text NOT NULL REFERENCES threads (id) ON DELETE CASCADE,
                agent        text NOT NULL,
                definition   jsonb NOT NULL,
                input        text NOT NULL,
                status       text NOT NULL,
                output       text,
                citations    jsonb NOT NULL DEFAULT '[]',
                usage        jsonb NOT NULL DEFAULT '{}',
                error        jsonb,
                owner        text,
                lease_until  timestamptz,
                created_at   timestamptz NOT NULL DEFAULT now(),
                completed_at timestamptz
            );
            CREATE INDEX runs_thread ON runs (thread_id, created_at);
            CREATE INDEX runs_unfinished ON runs (lease_until) WHERE status IN ('queued', 'running', 'requires_action');

            CREATE TABLE run_events (
                run_id     text NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
                seq        integer NOT NULL,
                type       text NOT NULL,
                data       jsonb NOT NULL,
                created_at timestamptz NOT NULL DEFAULT now(),
                PRIMARY KEY (run_id, seq)
            );

            -- One checkpoint per step: a completed step's result is reused after a restart, never recomputed.
            CREATE TABLE run_steps (
                run_id     text NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
                step_key   text NOT NULL,
                status     text NOT NULL,
                result     jsonb,
                updated_at timestamptz NOT NULL DEFAULT now(),
                PRIMARY KEY (run_id, step_key)
            );

            -- Tool calls by idempotency key (run, step, tool, arguments): a call recorded here never runs a second time.
            CREATE TABLE tool_calls (
                run_id          text NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
                idempotency_key text NOT NULL,
                call_id         text NOT NULL,
                step_key        text NOT NULL,
                tool            text NOT NULL,
                arguments       jsonb NOT NULL,
                status          text NOT NULL,
                result          text,
                decision_reason text,
                citations       jsonb NOT NULL DEFAULT '[]',
                created_at      timestamptz NOT NULL DEFAULT now(),
                completed_at    timestamptz,
                PRIMARY KEY (run_id, idempotency_key)
            );
            """),
    ];
}
