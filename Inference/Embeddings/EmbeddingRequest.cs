using System.Text.Json;

namespace AspireAi.Inference.Embeddings;

/// <summary>A parsed <c>POST /v1/embeddings</c> body; each input is either text or token ids.</summary>
internal sealed record EmbeddingRequest(string Model, IReadOnlyList<EmbeddingInput> Inputs, bool Base64, int? Dimensions)
{
    /// <summary>Parses OpenAI's request shape, or says which field is wrong (<paramref name="error"/> and its <c>param</c>).</summary>
    public static EmbeddingRequest? Parse(JsonElement body, int maxInputs, out string? error, out string? param)
    {
        (error, param) = (null, null);
        if (body.ValueKind != JsonValueKind.Object)
        {
            (error, param) = ("The request body must be a JSON object.", null);
            return null;
        }

        if (!body.TryGetProperty("model", out var modelElement) || modelElement.ValueKind != JsonValueKind.String
            || string.IsNullOrWhiteSpace(modelElement.GetString()))
        {
            (error, param) = ("'model' is required: the id of an embedding model from GET /v1/models.", "model");
            return null;
        }

        if (!body.TryGetProperty("input", out var input))
        {
            (error, param) = ("'input' is required: a string, an array of strings, an array of token ids or an array of such arrays.", "input");
            return null;
        }

        var inputs = ParseInputs(input, out error, out param);
        if (inputs is null)
        {
            return null;
        }

        if (inputs.Count > maxInputs)
        {
            (error, param) = ($"'input' has {inputs.Count} items; at most {maxInputs} are allowed per request.", "input");
            return null;
        }

        var base64 = false;
        if (body.TryGetProperty("encoding_format", out var format) && format.ValueKind != JsonValueKind.Null)
        {
            switch (format.ValueKind == JsonValueKind.String ? format.GetString() : null)
            {
                case "float":
                    break;
                case "base64":
                    base64 = true;
                    break;
                default:
                    (error, param) = ($"'encoding_format' must be \"float\" or \"base64\", not {format.GetRawText()}.", "encoding_format");
                    return null;
            }
        }

        int? dimensions = null;
        if (body.TryGetProperty("dimensions", out var dims) && dims.ValueKind != JsonValueKind.Null)
        {
            if (dims.ValueKind != JsonValueKind.Number || !dims.TryGetInt32(out var d) || d < 1)
            {
                (error, param) = ($"'dimensions' must be a positive integer, not {dims.GetRawText()}.", "dimensions");
                return null;
            }

            dimensions = d;
        }

        return new EmbeddingRequest(modelElement.GetString()!, inputs, base64, dimensions);
    }

    private static List<EmbeddingInput>? ParseInputs(JsonElement input, out string? error, out string? param)
    {
        (error, param) = (null, null);
        switch (input.ValueKind)
        {
            case JsonValueKind.String:
                return Text(input.GetString()!, "input", out error, out param) is { } single ? [single] : null;
            case JsonValueKind.Array when input.GetArrayLength() == 0:
                (error, param) = ("'input' must not be an empty array.", "input");
                return null;
            case JsonValueKind.Array when input[0].ValueKind == JsonValueKind.Number:
                return Tokens(input, "input", out error, out param) is { } tokens ? [tokens] : null;
            case JsonValueKind.Array:
                var inputs = new List<EmbeddingInput>(input.GetArrayLength());
                var index = 0;
                foreach (var item in input.EnumerateArray())
                {
                    var where = $"input[{index++}]";
                    var parsed = item.ValueKind switch
                    {
                        JsonValueKind.String => Text(item.GetString()!, where, out error, out param),
                        JsonValueKind.Array => Tokens(item, where, out error, out param),
                        _ => Fail($"'{where}' must be a string or an array of token ids, not {item.ValueKind}.", where, out error, out param),
                    };
                    if (parsed is null)
                    {
                        return null;
                    }

                    inputs.Add(parsed);
                }

                return inputs;
            default:
                Fail("'input' must be a string, an array of strings, an array of token ids or an array of such arrays.", "input", out error, out param);
                return null;
        }
    }

    private static EmbeddingInput? Text(string text, string where, out string? error, out string? param)
    {
        (error, param) = (null, null);
        return string.IsNullOrWhiteSpace(text)
            ? Fail($"'{where}' is empty: every input needs some text.", where, out error, out param)
            : new EmbeddingInput(text, null);
    }

    private static EmbeddingInput? Tokens(JsonElement array, string where, out string? error, out string? param)
    {
        (error, param) = (null, null);
        if (array.GetArrayLength() == 0)
        {
            return Fail($"'{where}' is an empty token array.", where, out error, out param);
        }

        var ids = new int[array.GetArrayLength()];
        var i = 0;
        foreach (var token in array.EnumerateArray())
        {
            if (token.ValueKind != JsonValueKind.Number || !token.TryGetInt32(out ids[i]) || ids[i] < 0)
            {
                return Fail($"'{where}[{i}]' must be a non-negative integer token id, not {token.GetRawText()}.", $"{where}[{i}]", out error, out param);
            }

            i++;
        }

        return new EmbeddingInput(null, ids);
    }

    private static EmbeddingInput? Fail(string message, string where, out string? error, out string? param)
    {
        (error, param) = (message, where);
        return null;
    }
}

/// <summary>One input: text to tokenize, or token ids given by the caller.</summary>
internal sealed record EmbeddingInput(string? Text, int[]? TokenIds);
