using System.Globalization;

namespace AspireAi.Gateway.Limits;

/// <summary>OpenAI's rate limit headers (<c>x-ratelimit-limit-requests</c> etc.) and <c>Retry-After</c> on a 429.</summary>
internal static class RateLimitHeaders
{
    public static void Write(HttpResponse response, LimitDecision decision)
    {
        var headers = response.Headers;
        if (decision.RequestLimit is { } requests)
        {
            headers["x-ratelimit-limit-requests"] = requests.ToString(CultureInfo.InvariantCulture);
            headers["x-ratelimit-remaining-requests"] = decision.RequestsRemaining.ToString(CultureInfo.InvariantCulture);
            headers["x-ratelimit-reset-requests"] = Duration(decision.RequestsReset);
        }

        if (decision.TokenLimit is { } tokens)
        {
            headers["x-ratelimit-limit-tokens"] = tokens.ToString(CultureInfo.InvariantCulture);
            headers["x-ratelimit-remaining-tokens"] = decision.TokensRemaining.ToString(CultureInfo.InvariantCulture);
            headers["x-ratelimit-reset-tokens"] = Duration(decision.TokensReset);
        }

        if (decision.TokenBudget is { } budget)
        {
            headers["x-aspireai-budget-limit-tokens"] = budget.ToString(CultureInfo.InvariantCulture);
            headers["x-aspireai-budget-remaining-tokens"] = decision.BudgetRemaining.ToString(CultureInfo.InvariantCulture);
        }

        if (!decision.Allowed)
        {
            // Whole seconds, rounded up: a client that waits exactly this long is admitted.
            headers.RetryAfter = Math.Max(1, (long)Math.Ceiling(decision.RetryAfter.TotalSeconds)).ToString(CultureInfo.InvariantCulture);
        }
    }

    public static IResult Refusal(LimitDecision decision) => decision.Refused switch
    {
        LimitReason.Requests => OpenAiError.Result(429,
            $"Rate limit reached for requests: limit {decision.RequestLimit} per minute. Try again in {Duration(decision.RetryAfter)}.",
            code: "rate_limit_exceeded"),
        LimitReason.Tokens => OpenAiError.Result(429,
            $"Rate limit reached for tokens: limit {decision.TokenLimit} per minute. Try again in {Duration(decision.RetryAfter)}.",
            code: "rate_limit_exceeded"),
        _ => OpenAiError.Result(429,
            $"This key has used its token budget of {decision.TokenBudget} for the period; it renews in {Duration(decision.RetryAfter)}.",
            code: "insufficient_quota"),
    };

    /// <summary>A duration written as OpenAI writes it (Go's format): <c>20ms</c>, <c>1.5s</c>, <c>6m0s</c>.</summary>
    public static string Duration(TimeSpan span)
    {
        if (span < TimeSpan.FromSeconds(1))
        {
            return $"{(long)Math.Ceiling(span.TotalMilliseconds)}ms";
        }

        if (span < TimeSpan.FromMinutes(1))
        {
            return $"{Math.Round(span.TotalSeconds, 3).ToString(CultureInfo.InvariantCulture)}s";
        }

        return span < TimeSpan.FromHours(1)
            ? $"{(int)span.TotalMinutes}m{span.Seconds}s"
            : $"{(int)span.TotalHours}h{span.Minutes}m{span.Seconds}s";
    }
}
