using System.Text.Json;

namespace AspireAi.Inference.Serving.OpenAi;

/// <summary>
/// Reads the fields of an OpenAI request body and collects every problem (rather than stopping at the first), so one 400
/// names every invalid field.
/// </summary>
internal sealed class RequestReader(JsonElement root)
{
    private readonly List<(string Field, string Problem)> _errors = [];

    public JsonElement Root { get; } = root;

    public bool HasErrors => _errors.Count > 0;

    public void Fail(string field, string problem) => _errors.Add((field, problem));

    public bool Has(string name) => Root.TryGetProperty(name, out var v) && v.ValueKind != JsonValueKind.Null;

    public JsonElement? Element(string name) =>
        Root.TryGetProperty(name, out var v) && v.ValueKind != JsonValueKind.Null ? v : null;

    public string? String(string name, bool required = false)
    {
        if (Element(name) is not { } v)
        {
            if (required)
            {
                Fail(name, "is required");
            }

            return null;
        }

        if (v.ValueKind != JsonValueKind.String)
        {
            Fail(name, $"must be a string, not {Kind(v)}");
            return null;
        }

        return v.GetString();
    }

    public bool? Bool(string name)
    {
        if (Element(name) is not { } v)
        {
            return null;
        }

        if (v.ValueKind is not (JsonValueKind.True or JsonValueKind.False))
        {
            Fail(name, $"must be a boolean, not {Kind(v)}");
            return null;
        }

        return v.GetBoolean();
    }

    public int? Int(string name, int min, int max)
    {
        if (Element(name) is not { } v)
        {
            return null;
        }

        if (v.ValueKind != JsonValueKind.Number || !v.TryGetInt32(out var n))
        {
            Fail(name, $"must be an integer, not {Kind(v)}");
            return null;
        }

        if (n < min || n > max)
        {
            Fail(name, $"must be in [{min}, {max}], not {n}");
            return null;
        }

        return n;
    }

    /// <summary>An integer of any size (a seed: 64-bit in OpenAI's API), folded to 32 bits.</summary>
    public int? Seed(string name)
    {
        if (Element(name) is not { } v)
        {
            return null;
        }

        if (v.ValueKind != JsonValueKind.Number || !v.TryGetInt64(out var n))
        {
            Fail(name, $"must be an integer, not {Kind(v)}");
            return null;
        }

        return unchecked((int)n ^ (int)(n >> 32));
    }

    public float? Number(string name, float min, float max, bool minExclusive = false)
    {
        if (Element(name) is not { } v)
        {
            return null;
        }

        if (v.ValueKind != JsonValueKind.Number)
        {
            Fail(name, $"must be a number, not {Kind(v)}");
            return null;
        }

        var x = v.GetDouble();
        if ((minExclusive ? x <= min : x < min) || x > max)
        {
            Fail(name, $"must be in {(minExclusive ? "(" : "[")}{min}, {max}], not {x}");
            return null;
        }

        return (float)x;
    }

    /// <summary><c>stop</c>: a string or up to four strings.</summary>
    public string[] Stop(string name)
    {
        if (Element(name) is not { } v)
        {
            return [];
        }

        if (v.ValueKind == JsonValueKind.String)
        {
            return v.GetString() is { Length: > 0 } s ? [s] : [];
        }

        if (v.ValueKind == JsonValueKind.Array && v.EnumerateArray().All(e => e.ValueKind == JsonValueKind.String))
        {
            var stops = v.EnumerateArray().Select(e => e.GetString()!).Where(s => s.Length > 0).ToArray();
            if (stops.Length > 4)
            {
                Fail(name, "may hold at most 4 sequences");
            }

            return stops;
        }

        Fail(name, "must be a string or an array of strings");
        return [];
    }

    /// <summary>Fields this server does not implement but a client may send: refused unless at their neutral value.</summary>
    public void Unsupported(string name, Func<JsonElement, bool> isNeutral, string why)
    {
        if (Element(name) is { } v && !isNeutral(v))
        {
            Fail(name, why);
        }
    }

    public string ErrorMessage => "Invalid request: " + string.Join("; ", _errors.Select(e => $"'{e.Field}' {e.Problem}")) + ".";

    public string ErrorParam => string.Join(", ", _errors.Select(e => e.Field).Distinct());

    public IResult ErrorResult() => OpenAiError.Result(StatusCodes.Status400BadRequest, ErrorMessage, ErrorParam, "invalid_value");

    public OpenAiErrorEnvelope ErrorEnvelope() => ServingErrors.Envelope(StatusCodes.Status400BadRequest, ErrorMessage, ErrorParam, "invalid_value");

    public static string Kind(JsonElement v) => v.ValueKind switch
    {
        JsonValueKind.Object => "an object",
        JsonValueKind.Array => "an array",
        JsonValueKind.String => "a string",
        JsonValueKind.Number => "a number",
        JsonValueKind.True or JsonValueKind.False => "a boolean",
        _ => "null",
    };
}
