using System.Text.Json;
using System.Text.RegularExpressions;
using AspireAi.Gateway.Auth;

namespace AspireAi.Gateway.Keys;

/// <summary>
/// The admin API, for the master key only: <c>POST /admin/keys</c> (the secret is in this one answer and nowhere else),
/// <c>GET /admin/keys</c>, <c>DELETE /admin/keys/{id}</c>.
/// </summary>
internal static partial class KeyEndpoints
{
    [GeneratedRegex("^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]
    private static partial Regex TenantName();

    public static void MapKeyEndpoints(this IEndpointRouteBuilder app)
    {
        var admin = app.MapGroup("/admin/keys").RequireAuthorization(GatewayClaims.MasterKeyPolicy);

        admin.MapPost("", async (HttpContext context, IKeyStore store, CancellationToken ct) =>
        {
            using var body = await JsonDocument.ParseAsync(context.Request.Body, cancellationToken: ct);
            if (Parse(body.RootElement) is not { } request)
            {
                return Invalid(body.RootElement);
            }

            var secret = ApiKeySecrets.NewSecret();
            var key = request with { Id = ApiKeySecrets.NewId(), Hint = ApiKeySecrets.Hint(secret), CreatedAt = DateTimeOffset.UtcNow };
            await store.CreateAsync(key, ApiKeySecrets.Hash(secret), ct);
            return Results.Json(Shape(key, secret), statusCode: StatusCodes.Status201Created);
        });

        admin.MapGet("", async (string? tenant, IKeyStore store, CancellationToken ct) =>
            Results.Json(new { @object = "list", data = (await store.ListAsync(tenant, ct)).Select(k => Shape(k, secret: null)) }));

        admin.MapDelete("/{id}", async (string id, IKeyStore store, KeyLookup lookup, CancellationToken ct) =>
        {
            if (await store.RevokeAsync(id, ct) is not { } hash)
            {
                return OpenAiError.Result(404, $"No API key with id '{id}'.", "id", "key_not_found");
            }

            lookup.Forget(hash);
            return Results.Json(new { id, @object = "api_key", deleted = true });
        });
    }

    private static object Shape(ApiKey key, string? secret) => new
    {
        id = key.Id,
        @object = "api_key",
        key = secret,
        hint = key.Hint,
        tenant = key.Tenant,
        name = key.Name,
        scopes = key.Scopes,
        models = key.Models,
        limits = new
        {
            requests_per_minute = key.Limits.RequestsPerMinute,
            tokens_per_minute = key.Limits.TokensPerMinute,
            token_budget = key.Limits.TokenBudget,
            budget_period = key.Limits.BudgetPeriod?.ToString().ToLowerInvariant(),
        },
        created_at = key.CreatedAt.ToUnixTimeSeconds(),
        revoked = key.Revoked,
    };

    /// <summary>The key described by the request body, or null when it is invalid (see <see cref="Invalid"/> for why).</summary>
    private static ApiKey? Parse(JsonElement body) => Error(body) is null
        ? new ApiKey("", body.GetProperty("tenant").GetString()!,
            body.TryGetProperty("name", out var name) && name.ValueKind == JsonValueKind.String ? name.GetString() : null,
            Strings(body, "scopes"), Strings(body, "models"), Limits(body), "", default, null)
        : null;

    private static IResult Invalid(JsonElement body)
    {
        var (message, param) = Error(body)!.Value;
        return OpenAiError.Result(400, message, param);
    }

    private static (string Message, string Param)? Error(JsonElement body)
    {
        if (body.ValueKind != JsonValueKind.Object)
        {
            return ("The body must be a JSON object such as {\"tenant\": \"acme\"}.", "body");
        }

        if (!body.TryGetProperty("tenant", out var tenant) || tenant.ValueKind != JsonValueKind.String || !TenantName().IsMatch(tenant.GetString()!))
        {
            return ("'tenant' is required: 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit.", "tenant");
        }

        if (body.TryGetProperty("name", out var name) && name.ValueKind is not (JsonValueKind.String or JsonValueKind.Null))
        {
            return ("'name' must be a string.", "name");
        }

        foreach (var list in (string[])["scopes", "models"])
        {
            if (body.TryGetProperty(list, out var items) && items.ValueKind != JsonValueKind.Null
                && (items.ValueKind != JsonValueKind.Array || items.EnumerateArray().Any(i => i.ValueKind != JsonValueKind.String || i.GetString()!.Length == 0)))
            {
                return ($"'{list}' must be an array of non-empty strings.", list);
            }
        }

        if (Strings(body, "scopes").FirstOrDefault(s => !Caller.KnownScopes.Contains(s)) is { } unknown)
        {
            return ($"Unknown scope '{unknown}'; scopes are {string.Join(", ", Caller.KnownScopes)} (none = all).", "scopes");
        }

        if (!body.TryGetProperty("limits", out var limits) || limits.ValueKind == JsonValueKind.Null)
        {
            return null;
        }

        if (limits.ValueKind != JsonValueKind.Object)
        {
            return ("'limits' must be an object.", "limits");
        }

        foreach (var field in (string[])["requests_per_minute", "tokens_per_minute", "token_budget"])
        {
            if (limits.TryGetProperty(field, out var value) && value.ValueKind != JsonValueKind.Null
                && !(value.ValueKind == JsonValueKind.Number && value.TryGetInt64(out var n) && n > 0 && (field == "token_budget" || n <= int.MaxValue)))
            {
                return ($"'limits.{field}' must be a positive integer.", $"limits.{field}");
            }
        }

        var hasBudget = limits.TryGetProperty("token_budget", out var budget) && budget.ValueKind == JsonValueKind.Number;
        var period = limits.TryGetProperty("budget_period", out var p) && p.ValueKind == JsonValueKind.String ? p.GetString() : null;
        if (period is not null && !Enum.TryParse<BudgetPeriod>(period, ignoreCase: true, out _))
        {
            return ("'limits.budget_period' must be 'day' or 'month'.", "limits.budget_period");
        }

        return hasBudget && period is null ? ("'limits.token_budget' needs 'limits.budget_period': 'day' or 'month'.", "limits.budget_period") : null;
    }

    private static string[] Strings(JsonElement body, string name) =>
        body.TryGetProperty(name, out var items) && items.ValueKind == JsonValueKind.Array
            ? [.. items.EnumerateArray().Select(i => i.GetString()!)]
            : [];

    private static KeyLimits Limits(JsonElement body)
    {
        if (!body.TryGetProperty("limits", out var limits) || limits.ValueKind != JsonValueKind.Object)
        {
            return KeyLimits.None;
        }

        long? Number(string field) => limits.TryGetProperty(field, out var v) && v.ValueKind == JsonValueKind.Number ? v.GetInt64() : null;
        var period = limits.TryGetProperty("budget_period", out var p) && p.ValueKind == JsonValueKind.String
            ? Enum.Parse<BudgetPeriod>(p.GetString()!, ignoreCase: true)
            : (BudgetPeriod?)null;
        return new KeyLimits((int?)Number("requests_per_minute"), (int?)Number("tokens_per_minute"), Number("token_budget"), period);
    }
}
