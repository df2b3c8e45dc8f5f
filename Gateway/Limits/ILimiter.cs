using AspireAi.Gateway.Auth;

namespace AspireAi.Gateway.Limits;

/// <summary>Per-key request and token rates and token budgets, shared by every gateway replica (Redis: <see cref="RedisLimiter"/>).</summary>
internal interface ILimiter
{
    /// <summary>Counts one request against the caller's rate if every limit has room, else refuses it without counting.</summary>
    ValueTask<LimitDecision> AdmitAsync(Caller caller);

    /// <summary>Counts tokens used by an admitted request (from the response's <c>usage</c>) against rate and budget.</summary>
    ValueTask ChargeAsync(Caller caller, int tokens);
}
