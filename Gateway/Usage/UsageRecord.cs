namespace AspireAi.Gateway.Usage;

/// <summary>One request as billed: who, which model, tokens from the response's <c>usage</c>, how long, how it ended.</summary>
internal sealed record UsageRecord(
    DateTimeOffset At,
    string KeyId,
    string Tenant,
    string Endpoint,
    string? Model,
    int PromptTokens,
    int CompletionTokens,
    double LatencyMs,
    int Status,
    string? Cache);
