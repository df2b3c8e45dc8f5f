namespace AspireAi.Gateway.Usage;

/// <summary>Where usage records go (PostgreSQL: <see cref="PostgresUsageStore"/>), a batch at a time.</summary>
internal interface IUsageStore
{
    Task WriteAsync(IReadOnlyList<UsageRecord> batch, CancellationToken ct);
}
