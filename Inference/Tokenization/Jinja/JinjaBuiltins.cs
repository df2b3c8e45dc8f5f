using System.Globalization;
using System.Text;
using static AspireAi.Inference.Tokenization.Jinja.JinjaValues;

namespace AspireAi.Inference.Tokenization.Jinja;

/// <summary>The filters, tests, string/dict methods and global functions real chat templates call.</summary>
internal static class JinjaBuiltins
{
    public static Dictionary<string, object?> Globals(Func<DateTime> now) => new(StringComparer.Ordinal)
    {
        ["raise_exception"] = (JinjaCallable)((args, _) => throw new JinjaException("template error: " + (args.Count > 0 ? ToText(args[0]) : "raise_exception called"))),
        ["range"] = (JinjaCallable)((args, _) =>
        {
            var n = args.Select(a => a is long l ? l : throw new JinjaException("range() needs integers")).ToArray();
            var (start, stop, step) = n.Length switch { 1 => (0L, n[0], 1L), 2 => (n[0], n[1], 1L), 3 => (n[0], n[1], n[2]), _ => throw new JinjaException("range() takes 1 to 3 arguments") };
            if (step == 0)
            {
                throw new JinjaException("range() step cannot be zero");
            }

            var list = new List<object?>();
            for (var i = start; step > 0 ? i < stop : i > stop; i += step)
            {
                list.Add(i);
            }

            return list;
        }),
        ["namespace"] = (JinjaCallable)((args, kwargs) =>
        {
            var ns = new JinjaNamespace();
            foreach (var (key, value) in kwargs)
            {
                ns[key] = value;
            }

            return ns;
        }),
        ["dict"] = (JinjaCallable)((_, kwargs) => new Dictionary<string, object?>(kwargs, StringComparer.Ordinal)),
        ["strftime_now"] = (JinjaCallable)((args, _) => Strftime(now(), args.Count > 0 ? ToText(args[0]) : "%Y-%m-%d")),
    };

    public static object? ApplyFilter(JinjaEvaluator evaluator, string name, object? value, List<object?> args, Dictionary<string, object?> kwargs, int line)
    {
        object? Arg(int i, string key, object? fallback = null) => i < args.Count ? args[i] : kwargs.TryGetValue(key, out var v) ? v : fallback;
        switch (name)
        {
            case "trim":
                return ToText(value).Trim();
            case "upper":
                return ToText(value).ToUpperInvariant();
            case "lower":
                return ToText(value).ToLowerInvariant();
            case "capitalize":
                var text = ToText(value);
                return text.Length == 0 ? text : char.ToUpperInvariant(text[0]) + text[1..].ToLowerInvariant();
            case "title":
                return Title(ToText(value));
            case "length" or "count":
                return value switch
                {
                    string s => (long)s.Length,
                    System.Collections.ICollection c => (long)c.Count,
                    null or Undefined => 0L,
                    _ => throw new JinjaException($"line {line}: {TypeName(value)} has no length"),
                };
            case "string":
                return ToText(value);
            case "int":
                return value switch
                {
                    long l => l,
                    double d => (long)d,
                    bool b => b ? 1L : 0L,
                    string s when long.TryParse(s.Trim(), NumberStyles.Integer, CultureInfo.InvariantCulture, out var l) => l,
                    string s when double.TryParse(s.Trim(), NumberStyles.Float, CultureInfo.InvariantCulture, out var d) => (long)d,
                    _ => Arg(0, "default", 0L),
                };
            case "float":
                return value switch { long l => (double)l, double d => d, string s when double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out var d) => d, _ => 0.0 };
            case "abs":
                return value is long al ? Math.Abs(al) : (object)Math.Abs(ToDouble(value));
            case "round":
                var digits = Arg(0, "precision", 0L) is long p ? (int)p : 0;
                return Math.Round(ToDouble(value), digits, MidpointRounding.ToEven);
            case "tojson":
                return ToJson(value, Arg(0, "indent") is long indent ? (int)indent : null);
            case "join":
                var separator = ToText(Arg(0, "d", ""));
                var attribute = Arg(1, "attribute") as string;
                return string.Join(separator, Iterate(value).Select(v => ToText(attribute is null ? v : JinjaEvaluator.GetAttribute(v, attribute))));
            case "default" or "d":
                var useForFalse = IsTrue(Arg(1, "boolean", false));
                return value is Undefined || (useForFalse && !IsTrue(value)) ? Arg(0, "default_value", "") : value;
            case "first":
                return Iterate(value).FirstOrDefault(Undefined.Instance);
            case "last":
                return value is List<object?> ll ? (ll.Count > 0 ? ll[^1] : Undefined.Instance) : Iterate(value).LastOrDefault(Undefined.Instance);
            case "list":
                return Iterate(value).ToList();
            case "reverse":
                return value is string rs ? string.Concat(rs.Reverse()) : Iterate(value).Reverse().ToList();
            case "unique":
                var unique = new List<object?>();
                foreach (var item in Iterate(value))
                {
                    if (!unique.Any(u => Equal(u, item)))
                    {
                        unique.Add(item);
                    }
                }

                return unique;
            case "sort":
                var sortAttribute = Arg(2, "attribute") as string;
                var sorted = Iterate(value).ToList();
                sorted.Sort((a, b) => Compare(sortAttribute is null ? a : JinjaEvaluator.GetAttribute(a, sortAttribute), sortAttribute is null ? b : JinjaEvaluator.GetAttribute(b, sortAttribute)));
                if (IsTrue(Arg(0, "reverse", false)))
                {
                    sorted.Reverse();
                }

                return sorted;
            case "items":
                return value is Dictionary<string, object?> dict ? dict.Select(p => (object?)new List<object?> { p.Key, p.Value }).ToList()
                    : value is null or Undefined ? new List<object?>() : throw new JinjaException($"line {line}: items needs a dict, not {TypeName(value)}");
            case "dictsort":
                return value is Dictionary<string, object?> ds ? ds.OrderBy(p => p.Key, StringComparer.Ordinal).Select(p => (object?)new List<object?> { p.Key, p.Value }).ToList()
                    : throw new JinjaException($"line {line}: dictsort needs a dict");
            case "replace":
                var old = ToText(Arg(0, "old", ""));
                return old.Length == 0 ? ToText(value) : ToText(value).Replace(old, ToText(Arg(1, "new", "")), StringComparison.Ordinal);
            case "indent":
                return Indent(ToText(value), Arg(0, "width", 4L), IsTrue(Arg(1, "first", false)), IsTrue(Arg(2, "blank", false)));
            case "safe" or "e" or "escape" or "forceescape":
                // Chat templates render without autoescaping (as transformers does); escape is the identity here too.
                return value;
            case "selectattr" or "rejectattr":
            {
                var attr = ToText(Arg(0, "attribute", ""));
                var keep = name == "selectattr";
                return Iterate(value).Where(item =>
                {
                    var v = JinjaEvaluator.GetAttribute(item, attr);
                    var passed = args.Count > 1 ? ApplyTest(ToText(args[1]), v, args.Skip(2).ToList(), line) : IsTrue(v);
                    return passed == keep;
                }).ToList();
            }

            case "select" or "reject":
            {
                var keep = name == "select";
                return Iterate(value).Where(item => (args.Count > 0 ? ApplyTest(ToText(args[0]), item, args.Skip(1).ToList(), line) : IsTrue(item)) == keep).ToList();
            }

            case "map":
                if (kwargs.TryGetValue("attribute", out var mapAttribute))
                {
                    var fallback = kwargs.GetValueOrDefault("default", Undefined.Instance);
                    return Iterate(value).Select(item => JinjaEvaluator.GetAttribute(item, ToText(mapAttribute)) is Undefined ? fallback : JinjaEvaluator.GetAttribute(item, ToText(mapAttribute))).ToList();
                }

                if (args.Count > 0)
                {
                    var filter = ToText(args[0]);
                    return Iterate(value).Select(item => ApplyFilter(evaluator, filter, item, args.Skip(1).ToList(), [], line)).ToList();
                }

                throw new JinjaException($"line {line}: map needs a filter name or attribute=");
            case "sum":
                return Iterate(value).Aggregate((object?)0L, (acc, v) => acc is long a && v is long b ? a + b : ToDouble(acc) + ToDouble(v));
            case "min" or "max":
                var values = Iterate(value).ToList();
                if (values.Count == 0)
                {
                    return Undefined.Instance;
                }

                values.Sort(Compare);
                return name == "min" ? values[0] : values[^1];
            case "wordcount":
                return (long)ToText(value).Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries).Length;
            default:
                throw new JinjaException($"line {line}: unknown filter '{name}'");
        }
    }

    public static bool ApplyTest(string name, object? value, List<object?> args, int line) => name switch
    {
        "defined" => value is not Undefined,
        "undefined" => value is Undefined,
        "none" => value is null,
        "string" => value is string,
        "mapping" => value is Dictionary<string, object?>,
        "iterable" => value is string or List<object?> or Dictionary<string, object?>,
        "sequence" => value is string or List<object?> or Dictionary<string, object?>,
        "number" => value is long or double,
        "integer" => value is long,
        "float" => value is double,
        "boolean" => value is bool,
        "true" => value is true,
        "false" => value is false,
        "callable" => value is JinjaCallable,
        "odd" => value is long o && o % 2 != 0,
        "even" => value is long e && e % 2 == 0,
        "divisibleby" => value is long v && args.Count > 0 && args[0] is long d && d != 0 && v % d == 0,
        "lower" => value is string l && l == l.ToLowerInvariant(),
        "upper" => value is string u && u == u.ToUpperInvariant(),
        "equalto" or "eq" or "==" or "sameas" => args.Count > 0 && Equal(value, args[0]),
        "ne" or "!=" => args.Count > 0 && !Equal(value, args[0]),
        "gt" or "greaterthan" or ">" => args.Count > 0 && Compare(value, args[0]) > 0,
        "ge" or ">=" => args.Count > 0 && Compare(value, args[0]) >= 0,
        "lt" or "lessthan" or "<" => args.Count > 0 && Compare(value, args[0]) < 0,
        "le" or "<=" => args.Count > 0 && Compare(value, args[0]) <= 0,
        "in" => args.Count > 0 && args[0] switch
        {
            List<object?> list => list.Any(x => Equal(x, value)),
            string s => value is string sub && s.Contains(sub, StringComparison.Ordinal),
            Dictionary<string, object?> dict => value is string key && dict.ContainsKey(key),
            _ => false,
        },
        _ => throw new JinjaException($"line {line}: unknown test '{name}'"),
    };

    public static bool TryCallMethod(object? owner, string method, List<object?> args, Dictionary<string, object?> kwargs, int line, out object? result)
    {
        result = null;
        switch (owner)
        {
            case string s:
                string? Chars(int i) => i < args.Count && args[i] is string c ? c : null;
                result = method switch
                {
                    "strip" => Chars(0) is { } c1 ? s.Trim(c1.ToCharArray()) : s.Trim(),
                    "lstrip" => Chars(0) is { } c2 ? s.TrimStart(c2.ToCharArray()) : s.TrimStart(),
                    "rstrip" => Chars(0) is { } c3 ? s.TrimEnd(c3.ToCharArray()) : s.TrimEnd(),
                    "upper" => s.ToUpperInvariant(),
                    "lower" => s.ToLowerInvariant(),
                    "title" => Title(s),
                    "capitalize" => s.Length == 0 ? s : char.ToUpperInvariant(s[0]) + s[1..].ToLowerInvariant(),
                    "startswith" => args.Count > 0 && (args[0] is List<object?> p1 ? p1.Any(p => s.StartsWith(ToText(p), StringComparison.Ordinal)) : s.StartsWith(ToText(args[0]), StringComparison.Ordinal)),
                    "endswith" => args.Count > 0 && (args[0] is List<object?> p2 ? p2.Any(p => s.EndsWith(ToText(p), StringComparison.Ordinal)) : s.EndsWith(ToText(args[0]), StringComparison.Ordinal)),
                    "split" => Split(s, Chars(0), args.Count > 1 && args[1] is long max ? (int)max : -1),
                    "replace" => args.Count >= 2 && ToText(args[0]).Length > 0 ? s.Replace(ToText(args[0]), ToText(args[1]), StringComparison.Ordinal) : s,
                    "find" => (long)s.IndexOf(ToText(args.FirstOrDefault()), StringComparison.Ordinal),
                    "count" => (long)(args.Count > 0 && ToText(args[0]).Length > 0 ? (s.Length - s.Replace(ToText(args[0]), "", StringComparison.Ordinal).Length) / ToText(args[0]).Length : 0),
                    "join" => string.Join(s, Iterate(args.FirstOrDefault()).Select(ToText)),
                    "isdigit" => s.Length > 0 && s.All(char.IsDigit),
                    "isalpha" => s.Length > 0 && s.All(char.IsLetter),
                    "isspace" => s.Length > 0 && s.All(char.IsWhiteSpace),
                    _ => throw new JinjaException($"line {line}: strings have no method '{method}'"),
                };
                return true;
            case Dictionary<string, object?> d:
                switch (method)
                {
                    case "get":
                        result = args.Count > 0 && d.TryGetValue(ToText(args[0]), out var v) ? v : args.Count > 1 ? args[1] : null;
                        return true;
                    case "items":
                        result = d.Select(p => (object?)new List<object?> { p.Key, p.Value }).ToList();
                        return true;
                    case "keys":
                        result = d.Keys.Cast<object?>().ToList();
                        return true;
                    case "values":
                        result = d.Values.ToList();
                        return true;
                    default:
                        // A dict holding a function (e.g. loop.cycle) is called as usual.
                        return false;
                }

            case List<object?> list:
                switch (method)
                {
                    case "append":
                        list.Add(args.FirstOrDefault());
                        result = null;
                        return true;
                    case "pop":
                        if (list.Count == 0)
                        {
                            throw new JinjaException($"line {line}: pop from an empty list");
                        }

                        var at = args.Count > 0 && args[0] is long i ? (int)(i < 0 ? i + list.Count : i) : list.Count - 1;
                        result = list[at];
                        list.RemoveAt(at);
                        return true;
                    case "index":
                        result = (long)list.FindIndex(x => Equal(x, args.FirstOrDefault()));
                        return true;
                    default:
                        throw new JinjaException($"line {line}: lists have no method '{method}'");
                }

            default:
                return false;
        }
    }

    private static List<object?> Split(string s, string? separator, int maxSplit)
    {
        if (separator is null)
        {
            // Python's split(): runs of whitespace, no empty strings.
            var parts = s.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
            return parts.Cast<object?>().ToList();
        }

        return (maxSplit >= 0 ? s.Split(separator, maxSplit + 1) : s.Split(separator)).Cast<object?>().ToList();
    }

    private static string Title(string s)
    {
        var sb = new StringBuilder(s.Length);
        var previousIsLetter = false;
        foreach (var c in s)
        {
            sb.Append(previousIsLetter ? char.ToLowerInvariant(c) : char.ToUpperInvariant(c));
            previousIsLetter = char.IsLetter(c);
        }

        return sb.ToString();
    }

    private static string Indent(string text, object? width, bool first, bool blank)
    {
        var pad = width is long n ? new string(' ', (int)n) : ToText(width);
        var lines = text.Split('\n');
        for (var i = 0; i < lines.Length; i++)
        {
            if ((i > 0 || first) && (blank || lines[i].Length > 0))
            {
                lines[i] = pad + lines[i];
            }
        }

        return string.Join('\n', lines);
    }

    /// <summary>The C <c>strftime</c> codes templates use (dates in the system prompt of Llama 3.x).</summary>
    private static string Strftime(DateTime t, string format)
    {
        var sb = new StringBuilder();
        for (var i = 0; i < format.Length; i++)
        {
            if (format[i] != '%' || i + 1 >= format.Length)
            {
                sb.Append(format[i]);
                continue;
            }

            var ci = CultureInfo.InvariantCulture;
            sb.Append(format[++i] switch
            {
                'd' => t.ToString("dd", ci),
                '-' when i + 1 < format.Length && format[i + 1] == 'd' => t.Day.ToString(ci) + (i++ > 0 ? "" : ""),
                'm' => t.ToString("MM", ci),
                'Y' => t.ToString("yyyy", ci),
                'y' => t.ToString("yy", ci),
                'b' => t.ToString("MMM", ci),
                'B' => t.ToString("MMMM", ci),
                'a' => t.ToString("ddd", ci),
                'A' => t.ToString("dddd", ci),
                'H' => t.ToString("HH", ci),
                'I' => t.ToString("hh", ci),
                'M' => t.ToString("mm", ci),
                'S' => t.ToString("ss", ci),
                'p' => t.Hour < 12 ? "AM" : "PM",
                'j' => t.DayOfYear.ToString("000", ci),
                '%' => "%",
                var other => "%" + other,
            });
        }

        return sb.ToString();
    }
}
