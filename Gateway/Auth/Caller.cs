using AspireAi.Gateway.Keys;

namespace AspireAi.Gateway.Auth;

/// <summary>
/// Who is calling, once authenticated: the tenant every downstream request is made for, what the caller may use and its
/// limits. Set by authentication as a request feature; <see cref="Of"/> reads it.
/// </summary>
internal sealed record Caller(string KeyId, string Tenant, IReadOnlyList<string> Scopes, IReadOnlyList<string> Models,
    KeyLimits Limits, bool IsAdmin)
{
    /// <summary>Scopes a key may be given; a key with none has them all.</summary>
    public static readonly string[] KnownScopes = ["inference", "retrieval", "agents"];

    public static Caller Of(HttpContext context) =>
        context.Features.Get<Caller>() ?? throw new InvalidOperationException("The request was not authenticated.");

    public bool HasScope(string scope) => Scopes.Count == 0 || Scopes.Contains(scope, StringComparer.Ordinal);

    /// <summary>Whether the key may use <paramref name="model"/>: any model when its list is empty; <c>prefix*</c> matches a prefix.</summary>
    public bool MayUse(string model) => Models.Count == 0 || Models.Any(allowed =>
        allowed.EndsWith('*') ? model.StartsWith(allowed[..^1], StringComparison.Ordinal) : allowed == model);
}
