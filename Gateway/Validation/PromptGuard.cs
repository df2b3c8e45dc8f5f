using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Microsoft.Extensions.Options;

namespace AspireAi.Gateway.Validation;

/// <summary>
/// The optional prompt guard (<c>Gateway:PromptGuard</c>): refuses prompts matching a configured deny-list, and replaces
/// e-mail addresses, phone numbers and payment card numbers with placeholders before the prompt leaves the gateway. It
/// looks at the text a model would read: chat message contents (strings and text parts), completion prompts and embedding
/// inputs.
/// </summary>
internal sealed partial class PromptGuard
{
    // A pathological pattern must not stall a request thread: 100 ms is ~1000× what a sane pattern needs on a long prompt.
    private static readonly TimeSpan MatchTimeout = TimeSpan.FromMilliseconds(100);
    private readonly Regex[] _deny;
    private readonly bool _redact;

    public PromptGuard(IOptions<GatewayOptions> options)
    {
        var guard = options.Value.PromptGuard;
        _deny = [.. guard.DenyPatterns.Select(p => new Regex(p, RegexOptions.IgnoreCase | RegexOptions.CultureInvariant, MatchTimeout))];
        _redact = guard.RedactPii;
    }

    public bool Enabled => _deny.Length > 0 || _redact;

    [GeneratedRegex(@"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")]
    private static partial Regex Email();

    // 13-19 digits, optionally in groups separated by single spaces or dashes; kept only if the Luhn check passes.
    [GeneratedRegex(@"(?<![\d-])\d(?:[ -]?\d){12,18}(?![\d-])")]
    private static partial Regex CardCandidate();

    // International (+CC …) or national numbers of 9-15 digits with common separators and an optional (area) group. A bare
    // run of digits is not taken for a phone number: order numbers and ids look the same.
    [GeneratedRegex(@"(?<![\w+])(?:\+\d{1,3}[ .-]?)?(?:\(\d{1,4}\)[ .-]?)?\d{2,4}(?:[ .-]?\d{2,4}){2,4}(?!\w)")]
    private static partial Regex PhoneCandidate();

    /// <summary>
    /// Checks and, when redaction is on, rewrites the prompt texts in <paramref name="body"/> in place. Returns the refusal
    /// (message and field) when a deny pattern matches, else null; <paramref name="changed"/> tells whether anything was redacted.
    /// </summary>
    public ValidationError? Apply(RequestKind kind, JsonObject body, out bool changed)
    {
        changed = false;
        foreach (var (node, param) in Texts(kind, body))
        {
            var text = node.GetValue<string>();
            if (_deny.FirstOrDefault(d => d.IsMatch(text)) is { } pattern)
            {
                return new ValidationError($"The prompt in '{param}' was refused by the gateway's content policy (pattern '{pattern}').", param);
            }

            if (_redact && Redact(text) is var redacted && redacted != text)
            {
                node.ReplaceWith(JsonValue.Create(redacted));
                changed = true;
            }
        }

        return null;
    }

    public static string Redact(string text)
    {
        text = Email().Replace(text, "[EMAIL]");
        text = CardCandidate().Replace(text, m => Luhn(m.Value) ? "[CARD]" : m.Value);
        return PhoneCandidate().Replace(text, m => m.Value.Count(char.IsAsciiDigit) is >= 9 and <= 15 && !m.Value.All(char.IsAsciiDigit)
            ? "[PHONE]"
            : m.Value);
    }

    private static bool Luhn(string candidate)
    {
        var digits = candidate.Where(char.IsAsciiDigit).Select(c => c - '0').ToArray();
        var sum = 0;
        for (var i = 0; i < digits.Length; i++)
        {
            var d = digits[digits.Length - 1 - i];
            sum += i % 2 == 1 ? (d * 2 > 9 ? d * 2 - 9 : d * 2) : d;
        }

        return sum % 10 == 0;
    }

    private static IEnumerable<(JsonValue Node, string Param)> Texts(RequestKind kind, JsonObject body)
    {
        var field = kind switch { RequestKind.ChatCompletions => "messages", RequestKind.Completions => "prompt", _ => "input" };
        if (kind == RequestKind.ChatCompletions && body["messages"] is JsonArray messages)
        {
            for (var i = 0; i < messages.Count; i++)
            {
                var content = messages[i]?["content"];
                if (content is JsonValue value && value.TryGetValue<string>(out _))
                {
                    yield return (value, $"messages[{i}].content");
                }
                else if (content is JsonArray parts)
                {
                    for (var j = 0; j < parts.Count; j++)
                    {
                        if (parts[j]?["text"] is JsonValue text && text.TryGetValue<string>(out _))
                        {
                            yield return (text, $"messages[{i}].content[{j}].text");
                        }
                    }
                }
            }
        }
        else if (body[field] is JsonValue single && single.TryGetValue<string>(out _))
        {
            yield return (single, field);
        }
        else if (body[field] is JsonArray items)
        {
            for (var i = 0; i < items.Count; i++)
            {
                if (items[i] is JsonValue item && item.TryGetValue<string>(out _))
                {
                    yield return (item, $"{field}[{i}]");
                }
            }
        }
    }
}
