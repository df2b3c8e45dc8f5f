namespace AspireAi.Gateway.Keys;

/// <summary>An API key as stored: everything but the key itself, of which only a SHA-256 hash and a short hint are kept.</summary>
internal sealed record ApiKey(
    string Id,
    string Tenant,
    string? Name,
    IReadOnlyList<string> Scopes,
    IReadOnlyList<string> Models,
    KeyLimits Limits,
    string Hint,
    DateTimeOffset CreatedAt,
    DateTimeOffset? RevokedAt)
{
    public bool Revoked => RevokedAt is not null;
}

/// <summary>A key's limits; null means "the gateway's default" (see <c>Gateway:Limits</c>), which may be unlimited.</summary>
internal sealed record KeyLimits(int? RequestsPerMinute, int? TokensPerMinute, long? TokenBudget, BudgetPeriod? BudgetPeriod)
{
    public static readonly KeyLimits None = new(null, null, null, null);
}

/// <summary>The period a token budget covers, in UTC calendar terms.</summary>
internal enum BudgetPeriod
{
    Day,
    Month,
}
