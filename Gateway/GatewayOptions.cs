namespace AspireAi.Gateway;

/// <summary>
/// The <c>Gateway</c> configuration section. Every key is documented in <c>docs/gateway.md</c>; defaults are chosen so that
/// a gateway with only a master key, a database and Redis behaves like OpenAI's API with no limits and the exact cache on.
/// </summary>
public sealed class GatewayOptions
{
    public const string Section = "Gateway";

    /// <summary>The <c>gateway-master-key</c> parameter: administers keys and acts for the <c>default</c> tenant.</summary>
    public string? MasterKey { get; set; }

    public KeyOptions Keys { get; set; } = new();
    public JwtOptions Jwt { get; set; } = new();
    public LimitOptions Limits { get; set; } = new();
    public ValidationOptions Validation { get; set; } = new();
    public PromptGuardOptions PromptGuard { get; set; } = new();
    public CacheOptions Cache { get; set; } = new();
    public SemanticCacheOptions SemanticCache { get; set; } = new();
    public ModelOptions Models { get; set; } = new();
    public ReplicaOptions Replicas { get; set; } = new();
    public UsageOptions Usage { get; set; } = new();

    /// <summary>Inference deployments: name → service address (resolved by service discovery). Default: <c>inference</c>.</summary>
    public Dictionary<string, string> Deployments { get; set; } = [];

    /// <summary>The Agents service (chat completions for <c>agent:*</c> models, <c>/v1/agents</c>, <c>/v1/threads</c>).</summary>
    public string Agents { get; set; } = "http://agents";

    /// <summary>The Retrieval service (<c>/v1/collections</c>, <c>/v1/ingestions</c>).</summary>
    public string Retrieval { get; set; } = "http://retrieval";

    public IReadOnlyDictionary<string, string> EffectiveDeployments =>
        Deployments.Count > 0 ? Deployments : new Dictionary<string, string> { ["inference"] = "http://inference" };
}

public sealed class KeyOptions
{
    /// <summary>
    /// How long a key lookup (found or not) is remembered in memory. This is the bound on how late a revocation takes effect
    /// on the other gateway replicas (the replica that revokes forgets the key at once).
    /// </summary>
    public double CacheSeconds { get; set; } = 5;
}

public sealed class JwtOptions
{
    /// <summary>OIDC authority (e.g. a Keycloak realm URL). JWT bearer validation is on only when this is set.</summary>
    public string? Authority { get; set; }

    /// <summary>Expected <c>aud</c>; when empty the audience is not checked.</summary>
    public string? Audience { get; set; }

    /// <summary>The claim that names the caller's tenant; a token without it is refused.</summary>
    public string TenantClaim { get; set; } = "tenant";

    public bool RequireHttpsMetadata { get; set; } = true;
}

public sealed class LimitOptions
{
    /// <summary>Requests per minute for keys that set none (JWT callers, older keys); null = unlimited.</summary>
    public int? DefaultRequestsPerMinute { get; set; }

    /// <summary>Tokens per minute for keys that set none; null = unlimited.</summary>
    public int? DefaultTokensPerMinute { get; set; }
}

public sealed class ValidationOptions
{
    /// <summary>Largest body of an OpenAI model request (chat, completions, embeddings): 4 MiB is ~1M tokens of text.</summary>
    public long MaxBodyBytes { get; set; } = 4 * 1024 * 1024;

    /// <summary>Largest body of any other request (document uploads to Retrieval).</summary>
    public long MaxUploadBytes { get; set; } = 64 * 1024 * 1024;

    /// <summary>Largest total size of the request headers (Kestrel's default is 32 KiB).</summary>
    public int MaxHeaderBytes { get; set; } = 32 * 1024;

    /// <summary>Most request headers (Kestrel's default is 100).</summary>
    public int MaxHeaderCount { get; set; } = 100;
}

public sealed class PromptGuardOptions
{
    /// <summary>Regular expressions (case-insensitive); a prompt matching any is refused with 400 <c>prompt_rejected</c>.</summary>
    public List<string> DenyPatterns { get; set; } = [];

    /// <summary>Replace e-mail addresses, phone numbers and card numbers in prompts with placeholders before forwarding.</summary>
    public bool RedactPii { get; set; }
}

public sealed class CacheOptions
{
    /// <summary>The exact response cache for deterministic requests (temperature 0 or a seed; embeddings).</summary>
    public bool Enabled { get; set; } = true;

    public double TtlSeconds { get; set; } = 600;

    /// <summary>Responses larger than this are not cached (a big embedding batch is cheaper to recompute than to ship).</summary>
    public int MaxEntryBytes { get; set; } = 1024 * 1024;
}

public sealed class SemanticCacheOptions
{
    /// <summary>Opt-in: answer chat completions from a cached answer to a conversation whose embedding is close enough.</summary>
    public bool Enabled { get; set; }

    /// <summary>The embedding model (served by an inference deployment) that embeds the conversation.</summary>
    public string Model { get; set; } = "all-MiniLM-L6-v2";

    /// <summary>Cosine similarity at or above which a cached answer is served.</summary>
    public double Threshold { get; set; } = 0.95;

    public double TtlSeconds { get; set; } = 3600;

    /// <summary>Newest entries kept per tenant and request shape; a lookup compares against all of them.</summary>
    public int MaxEntries { get; set; } = 128;
}

public sealed class ModelOptions
{
    /// <summary>How often each deployment's <c>/v1/models</c> is read again.</summary>
    public double RefreshSeconds { get; set; } = 30;

    /// <summary>alias → model id, e.g. <c>"gpt-4o-mini": "qwen2.5-0.5b-instruct"</c>.</summary>
    public Dictionary<string, string> Aliases { get; set; } = [];

    /// <summary>model → models tried in order when no replica of the model's deployment can take the request.</summary>
    public Dictionary<string, List<string>> Fallbacks { get; set; } = [];
}

public sealed class ReplicaOptions
{
    /// <summary>Characters of the prompt hashed for prefix affinity (0 turns affinity off).</summary>
    public int AffinityPrefixChars { get; set; } = 1024;

    /// <summary>The preferred replica is used while it has at most this many more requests in flight than the least busy one.</summary>
    public int AffinitySlack { get; set; } = 2;

    /// <summary>Consecutive failures (no connection, reset, 5xx before the first byte) that open a replica's circuit.</summary>
    public int FailureThreshold { get; set; } = 3;

    /// <summary>How long an open circuit keeps a replica out before one trial request.</summary>
    public double BreakSeconds { get; set; } = 10;

    public double ConnectTimeoutSeconds { get; set; } = 5;

    /// <summary>Longest silence between two bytes of an upstream response (a slow non-streaming completion on a CPU).</summary>
    public double ActivityTimeoutSeconds { get; set; } = 600;

    /// <summary>How often replica addresses are read again from service discovery.</summary>
    public double RefreshSeconds { get; set; } = 5;
}

public sealed class UsageOptions
{
    public int BatchSize { get; set; } = 500;

    public double FlushSeconds { get; set; } = 1;

    /// <summary>Records waiting to be written; past this, new ones are dropped and counted (the database is down or slow).</summary>
    public int MaxPending { get; set; } = 100_000;
}
