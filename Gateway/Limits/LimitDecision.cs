namespace AspireAi.Gateway.Limits;

/// <summary>Why a request was refused.</summary>
internal enum LimitReason
{
    None,
    Requests,
    Tokens,
    Budget,
}

/// <summary>
/// The outcome of admitting one request, with what OpenAI's <c>x-ratelimit-*</c> headers report. A limit of null was not
/// enforced (unlimited, or Redis was unavailable).
/// </summary>
internal sealed record LimitDecision(
    LimitReason Refused,
    int? RequestLimit, long RequestsRemaining, TimeSpan RequestsReset,
    int? TokenLimit, long TokensRemaining, TimeSpan TokensReset,
    long? TokenBudget, long BudgetRemaining,
    TimeSpan RetryAfter)
{
    public static readonly LimitDecision Unlimited = new(LimitReason.None, null, 0, TimeSpan.Zero, null, 0, TimeSpan.Zero, null, 0, TimeSpan.Zero);

    public bool Allowed => Refused == LimitReason.None;
}
