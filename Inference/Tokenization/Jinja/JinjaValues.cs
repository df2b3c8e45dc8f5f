using System.Globalization;
using System.Text;
using System.Text.Json;

namespace AspireAi.Inference.Tokenization.Jinja;

/// <summary>Jinja's undefined value: prints as nothing, is false, iterates as empty.</summary>
internal sealed class Undefined
{
    public static readonly Undefined Instance = new();

    public override string ToString() => "";
}

/// <summary>A function value: a global (<c>range</c>, <c>namespace</c>…), a macro or a bound method.</summary>
internal delegate object? JinjaCallable(List<object?> args, Dictionary<string, object?> kwargs);

/// <summary><c>namespace(...)</c>: the one mutable object templates use to carry state out of loops.</summary>
internal sealed class JinjaNamespace : Dictionary<string, object?>
{
    public JinjaNamespace() : base(StringComparer.Ordinal)
    {
    }
}

/// <summary>
/// The value model: null (none), <see cref="Undefined"/>, bool, long, double, string, <c>List&lt;object?&gt;</c>,
/// <c>Dictionary&lt;string, object?&gt;</c> (insertion-ordered like Python's dict), <see cref="JinjaCallable"/>;
/// conversions from .NET/JSON values, truthiness, Python-style printing and JSON as Hugging Face's <c>tojson</c> writes it.
/// </summary>
internal static class JinjaValues
{
    public static object? FromObject(object? value) => value switch
    {
        null => null,
        string or bool or long or double or Undefined or JinjaCallable or JinjaNamespace => value,
        int i => (long)i,
        float f => (double)f,
        decimal m => (double)m,
        uint u => (long)u,
        JsonElement e => FromJson(e),
        IDictionary<string, object?> d => d.ToDictionary(p => p.Key, p => FromObject(p.Value), StringComparer.Ordinal),
        System.Collections.IEnumerable list => list.Cast<object?>().Select(FromObject).ToList(),
        _ => value.ToString(),
    };

    public static object? FromJson(JsonElement e) => e.ValueKind switch
    {
        JsonValueKind.Object => e.EnumerateObject().Aggregate(new Dictionary<string, object?>(StringComparer.Ordinal), (d, p) => { d[p.Name] = FromJson(p.Value); return d; }),
        JsonValueKind.Array => e.EnumerateArray().Select(FromJson).ToList(),
        JsonValueKind.String => e.GetString(),
        JsonValueKind.Number => e.TryGetInt64(out var l) ? l : e.GetDouble(),
        JsonValueKind.True => true,
        JsonValueKind.False => false,
        _ => null,
    };

    public static bool IsTrue(object? v) => v switch
    {
        null or Undefined => false,
        bool b => b,
        long l => l != 0,
        double d => d != 0,
        string s => s.Length > 0,
        System.Collections.ICollection c => c.Count > 0,
        _ => true,
    };

    /// <summary>Python's <c>str()</c>.</summary>
    public static string ToText(object? v) => v switch
    {
        null => "None",
        Undefined => "",
        string s => s,
        bool b => b ? "True" : "False",
        long l => l.ToString(CultureInfo.InvariantCulture),
        double d => FormatDouble(d),
        _ => Repr(v),
    };

    /// <summary>Python's <c>repr()</c> (how lists and dicts print).</summary>
    public static string Repr(object? v) => v switch
    {
        string s => "'" + s.Replace("\\", "\\\\").Replace("'", "\\'").Replace("\n", "\\n") + "'",
        List<object?> list => "[" + string.Join(", ", list.Select(Repr)) + "]",
        Dictionary<string, object?> d => "{" + string.Join(", ", d.Select(p => Repr(p.Key) + ": " + Repr(p.Value))) + "}",
        JinjaCallable => "<function>",
        _ => ToText(v),
    };

    private static string FormatDouble(double d) =>
        double.IsInteger(d) && Math.Abs(d) < 1e16 ? d.ToString("0.0", CultureInfo.InvariantCulture) : d.ToString("R", CultureInfo.InvariantCulture);

    /// <summary>JSON as <c>json.dumps(x, ensure_ascii=False)</c> writes it (", " and ": " separators; with an indent, one item a line).</summary>
    public static string ToJson(object? v, int? indent = null)
    {
        var sb = new StringBuilder();
        WriteJson(sb, v, indent, 0);
        return sb.ToString();
    }

    private static void WriteJson(StringBuilder sb, object? v, int? indent, int depth)
    {
        switch (v)
        {
            case null or Undefined:
                sb.Append("null");
                break;
            case bool b:
                sb.Append(b ? "true" : "false");
                break;
            case long l:
                sb.Append(l.ToString(CultureInfo.InvariantCulture));
                break;
            case double d:
                sb.Append(FormatDouble(d));
                break;
            case string s:
                WriteJsonString(sb, s);
                break;
            case List<object?> list:
                WriteJsonContainer(sb, '[', ']', list.Count, indent, depth, i => WriteJson(sb, list[i], indent, depth + 1));
                break;
            case Dictionary<string, object?> dict:
                var pairs = dict.ToList();
                WriteJsonContainer(sb, '{', '}', pairs.Count, indent, depth, i =>
                {
                    WriteJsonString(sb, pairs[i].Key);
                    sb.Append(": ");
                    WriteJson(sb, pairs[i].Value, indent, depth + 1);
                });
                break;
            default:
                WriteJsonString(sb, ToText(v));
                break;
        }
    }

    private static void WriteJsonContainer(StringBuilder sb, char open, char close, int count, int? indent, int depth, Action<int> item)
    {
        sb.Append(open);
        if (count == 0)
        {
            sb.Append(close);
            return;
        }

        for (var i = 0; i < count; i++)
        {
            if (indent is { } n)
            {
                sb.Append(i == 0 ? "\n" : ",\n").Append(' ', n * (depth + 1));
            }
            else if (i > 0)
            {
                sb.Append(", ");
            }

            item(i);
        }

        if (indent is { } m)
        {
            sb.Append('\n').Append(' ', m * depth);
        }

        sb.Append(close);
    }

    private static void WriteJsonString(StringBuilder sb, string s)
    {
        sb.Append('"');
        foreach (var c in s)
        {
            switch (c)
            {
                case '"': sb.Append("\\\""); break;
                case '\\': sb.Append("\\\\"); break;
                case '\n': sb.Append("\\n"); break;
                case '\r': sb.Append("\\r"); break;
                case '\t': sb.Append("\\t"); break;
                case '\b': sb.Append("\\b"); break;
                case '\f': sb.Append("\\f"); break;
                default:
                    if (c < 0x20)
                    {
                        sb.Append("\\u").Append(((int)c).ToString("x4", CultureInfo.InvariantCulture));
                    }
                    else
                    {
                        sb.Append(c);
                    }

                    break;
            }
        }

        sb.Append('"');
    }

    public static IEnumerable<object?> Iterate(object? v) => v switch
    {
        null or Undefined => [],
        string s => s.EnumerateRunes().Select(r => (object?)r.ToString()),
        List<object?> list => list,
        Dictionary<string, object?> d => d.Keys,
        _ => throw new JinjaException($"{TypeName(v)} is not iterable"),
    };

    public static string TypeName(object? v) => v switch
    {
        null => "none",
        Undefined => "undefined",
        bool => "bool",
        long => "int",
        double => "float",
        string => "string",
        List<object?> => "list",
        Dictionary<string, object?> => "dict",
        JinjaCallable => "function",
        _ => v.GetType().Name,
    };

    public static bool Equal(object? a, object? b) => (a, b) switch
    {
        (null, null) => true,
        (Undefined, Undefined) => true,
        (long x, long y) => x == y,
        (long x, double y) => x == y,
        (double x, long y) => x == y,
        (double x, double y) => x == y,
        (bool x, bool y) => x == y,
        (bool x, long y) => (x ? 1 : 0) == y,
        (long x, bool y) => x == (y ? 1 : 0),
        (string x, string y) => x == y,
        (List<object?> x, List<object?> y) => x.Count == y.Count && x.Zip(y).All(p => Equal(p.First, p.Second)),
        (Dictionary<string, object?> x, Dictionary<string, object?> y) => x.Count == y.Count && x.All(p => y.TryGetValue(p.Key, out var o) && Equal(p.Value, o)),
        _ => ReferenceEquals(a, b),
    };

    public static int Compare(object? a, object? b) => (a, b) switch
    {
        (long x, long y) => x.CompareTo(y),
        (long or double or bool, long or double or bool) => ToDouble(a).CompareTo(ToDouble(b)),
        (string x, string y) => string.CompareOrdinal(x, y),
        _ => throw new JinjaException($"cannot compare {TypeName(a)} with {TypeName(b)}"),
    };

    public static double ToDouble(object? v) => v switch
    {
        long l => l,
        double d => d,
        bool b => b ? 1 : 0,
        string s when double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out var d) => d,
        _ => throw new JinjaException($"{TypeName(v)} is not a number"),
    };
}
