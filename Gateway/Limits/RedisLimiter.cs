using AspireAi.Gateway.Auth;
using AspireAi.Gateway.Keys;
using AspireAi.Gateway.Redis;
using Microsoft.Extensions.Options;
using StackExchange.Redis;

namespace AspireAi.Gateway.Limits;

/// <summary>
/// Rate limits as a <em>sliding window counter</em> in Redis: a count per fixed minute, and the rate at time t is
/// <c>previous minute × (1 − elapsed fraction) + current minute</c>. Unlike a fixed window it allows no burst of twice the
/// limit around a minute boundary; unlike a log of timestamps it keeps two integers per key and limit. Every check and
/// increment runs in one Lua script (atomic, one round trip) on Redis's clock, so all gateway replicas agree.
/// Requests are counted when admitted. Tokens are known only after the response (its <c>usage</c>), so a request is admitted
/// while any token of the minute's allowance remains and its tokens are charged afterwards — one request may overshoot,
/// the next one waits (OpenAI's behaviour too).
/// </summary>
internal sealed class RedisLimiter(RedisGuard redis, IOptions<GatewayOptions> options, TimeProvider time) : ILimiter
{
    private const long WindowMs = 60_000;

    private const string AdmitScript = """
        local t = redis.call('TIME')
        local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
        local w = tonumber(ARGV[1])
        local rpm = tonumber(ARGV[2]); local tpm = tonumber(ARGV[3]); local budget = tonumber(ARGV[4])
        local idx = math.floor(now / w)
        local frac = (now % w) / w
        local function counts(prefix)
          return tonumber(redis.call('GET', prefix .. idx) or '0'), tonumber(redis.call('GET', prefix .. (idx - 1)) or '0')
        end
        -- milliseconds until prev * (1 - frac) + cur + cost <= limit
        local function wait(cur, prev, limit, cost)
          if cur + cost <= limit then
            if prev == 0 then return 0 end
            local need = 1 - (limit - cur - cost) / prev
            if need <= frac then return 0 end
            return math.ceil((need - frac) * w)
          end
          local need = 1 - (limit - cost) / cur
          if need < 0 then need = 0 end
          return math.ceil((1 - frac + need) * w)
        end
        -- milliseconds until the estimate is back to zero if nothing more comes
        local function reset(cur, prev)
          if cur > 0 then return math.ceil((2 - frac) * w) end
          if prev > 0 then return math.ceil((1 - frac) * w) end
          return 0
        end
        local rc, rp = counts(KEYS[1])
        local tc, tp = counts(KEYS[2])
        local reason = 0
        local retry = 0
        if rpm >= 0 then local r = wait(rc, rp, rpm, 1); if r > 0 then reason = 1; retry = r end end
        if reason == 0 and tpm >= 0 then local r = wait(tc, tp, tpm, 1); if r > 0 then reason = 2; retry = r end end
        local bused = 0
        if budget >= 0 then
          bused = tonumber(redis.call('GET', KEYS[3]) or '0')
          if reason == 0 and bused >= budget then reason = 3; retry = tonumber(ARGV[5]) end
        end
        if reason == 0 and rpm >= 0 then
          redis.call('INCR', KEYS[1] .. idx)
          redis.call('PEXPIRE', KEYS[1] .. idx, 2 * w + 1000)
          rc = rc + 1
        end
        return { reason, math.ceil(rp * (1 - frac) + rc), reset(rc, rp), math.ceil(tp * (1 - frac) + tc), reset(tc, tp), retry, bused }
        """;

    private const string ChargeScript = """
        local t = redis.call('TIME')
        local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
        local w = tonumber(ARGV[1])
        local key = KEYS[1] .. math.floor(now / w)
        redis.call('INCRBY', key, ARGV[2])
        redis.call('PEXPIRE', key, 2 * w + 1000)
        if tonumber(ARGV[3]) > 0 then
          redis.call('INCRBY', KEYS[2], ARGV[2])
          redis.call('PEXPIRE', KEYS[2], ARGV[3])
        end
        return 1
        """;

    private readonly LimitOptions _defaults = options.Value.Limits;

    public async ValueTask<LimitDecision> AdmitAsync(Caller caller)
    {
        var (rpm, tpm, budget, period) = Effective(caller);
        if (rpm is null && tpm is null && budget is null)
        {
            return LimitDecision.Unlimited;
        }

        var (budgetKey, budgetEnds) = BudgetKey(caller, period);
        var result = await redis.RunAsync<RedisResult?>("limits", async db => await db.ScriptEvaluateAsync(AdmitScript,
            [$"rl:{{{caller.KeyId}}}:r:", $"rl:{{{caller.KeyId}}}:t:", budgetKey],
            [WindowMs, rpm ?? -1, tpm ?? -1, budget ?? -1, (long)budgetEnds.TotalMilliseconds]), null);
        if (result is null)
        {
            return LimitDecision.Unlimited; // degraded: Redis unavailable, nothing enforced
        }

        var v = (long[])result!;
        return new LimitDecision(
            (LimitReason)v[0],
            rpm, rpm is { } r ? Math.Max(0, r - v[1]) : 0, TimeSpan.FromMilliseconds(v[2]),
            tpm, tpm is { } t ? Math.Max(0, t - v[3]) : 0, TimeSpan.FromMilliseconds(v[4]),
            budget, budget is { } b ? Math.Max(0, b - v[6]) : 0,
            TimeSpan.FromMilliseconds(v[5]));
    }

    public async ValueTask ChargeAsync(Caller caller, int tokens)
    {
        var (_, tpm, budget, period) = Effective(caller);
        if (tokens <= 0 || (tpm is null && budget is null))
        {
            return;
        }

        var (budgetKey, budgetEnds) = BudgetKey(caller, period);
        var budgetTtl = budget is null ? -1 : (long)budgetEnds.TotalMilliseconds + 60_000;
        await redis.RunAsync<RedisResult?>("limits", async db => await db.ScriptEvaluateAsync(ChargeScript,
            [$"rl:{{{caller.KeyId}}}:t:", budgetKey], [WindowMs, tokens, budgetTtl]), null);
    }

    private (int? Rpm, int? Tpm, long? Budget, BudgetPeriod? Period) Effective(Caller caller) => (
        caller.Limits.RequestsPerMinute ?? _defaults.DefaultRequestsPerMinute,
        caller.Limits.TokensPerMinute ?? _defaults.DefaultTokensPerMinute,
        caller.Limits.TokenBudget,
        caller.Limits.BudgetPeriod);

    /// <summary>The Redis key of the caller's budget in the current UTC day or month, and the time until that period ends.</summary>
    private (RedisKey Key, TimeSpan Remaining) BudgetKey(Caller caller, BudgetPeriod? period)
    {
        var now = time.GetUtcNow();
        var (label, end) = period switch
        {
            BudgetPeriod.Month => (now.ToString("yyyyMM"), new DateTimeOffset(now.Year, now.Month, 1, 0, 0, 0, TimeSpan.Zero).AddMonths(1)),
            _ => (now.ToString("yyyyMMdd"), new DateTimeOffset(now.Date, TimeSpan.Zero).AddDays(1)),
        };
        return ($"rl:{{{caller.KeyId}}}:b:{label}", end - now);
    }
}
