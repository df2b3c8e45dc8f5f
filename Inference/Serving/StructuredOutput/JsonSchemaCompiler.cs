using System.Text.Json;

namespace AspireAi.Inference.Serving.StructuredOutput;

/// <summary>A schema the constrained decoder cannot enforce; the message names the keyword and where it is.</summary>
public sealed class UnsupportedSchemaException(string message) : Exception(message);

/// <summary>
/// Compiles a JSON Schema into <see cref="SchemaNode"/>s. Supported: <c>type</c> (one or a list), <c>properties</c>,
/// <c>required</c>, <c>additionalProperties</c> (output only ever has the listed properties), <c>items</c>,
/// <c>minItems</c>/<c>maxItems</c>, <c>enum</c>, <c>const</c>, <c>anyOf</c>, <c>minLength</c>/<c>maxLength</c>,
/// <c>minimum: 0</c>, <c>$ref</c> to <c>#</c>, <c>#/$defs/…</c> or <c>#/definitions/…</c>, and annotations (<c>title</c>,
/// <c>description</c>, <c>format</c>, <c>default</c>, <c>examples</c>…). Anything else that constrains values (<c>pattern</c>,
/// <c>oneOf</c>, <c>maximum</c>, <c>allOf</c>, …) is refused rather than silently ignored, so an accepted schema is always met.
/// Output is compact JSON: no whitespace outside strings, properties in schema order, numbers without exponent.
/// </summary>
internal sealed class JsonSchemaCompiler
{
    private static readonly HashSet<string> Annotations =
    [
        "$schema", "$id", "$comment", "title", "description", "default", "examples", "format", "deprecated", "readOnly",
        "writeOnly", "$defs", "definitions", "additionalProperties", "strict", "contentMediaType", "contentEncoding",
    ];

    private readonly JsonElement _root;
    private readonly Dictionary<string, SchemaNode> _refs = new(StringComparer.Ordinal);

    private JsonSchemaCompiler(JsonElement root) => _root = root;

    /// <exception cref="UnsupportedSchemaException">The schema uses something that cannot be enforced (message says what and where).</exception>
    public static SchemaNode Compile(JsonElement schema)
    {
        var compiler = new JsonSchemaCompiler(schema.Clone());
        var node = compiler.Node(compiler._root, "#");
        if (node.MinLength >= SchemaNode.Unbounded)
        {
            throw new UnsupportedSchemaException("The schema has no finite valid value (a required property recurses without end).");
        }

        // Resolve every reference now, so that errors surface before generation starts.
        foreach (var key in compiler._refs.Keys.ToList())
        {
            _ = ((RefNode)compiler._refs[key]).Target;
        }

        return node;
    }

    private SchemaNode Node(JsonElement schema, string path)
    {
        if (schema.ValueKind == JsonValueKind.True)
        {
            return AnyNode.At(0);
        }

        if (schema.ValueKind != JsonValueKind.Object)
        {
            throw new UnsupportedSchemaException($"{path}: a schema must be an object or true.");
        }

        foreach (var property in schema.EnumerateObject())
        {
            if (!Annotations.Contains(property.Name) && property.Name is not ("type" or "properties" or "required" or "items" or "minItems"
                    or "maxItems" or "enum" or "const" or "anyOf" or "minLength" or "maxLength" or "minimum" or "$ref"))
            {
                throw new UnsupportedSchemaException($"{path}: keyword '{property.Name}' is not supported by constrained decoding.");
            }
        }

        if (schema.TryGetProperty("$ref", out var reference))
        {
            return Ref(reference.GetString() ?? "", path);
        }

        if (schema.TryGetProperty("const", out var constant))
        {
            return new LiteralNode([Compact(constant)]);
        }

        if (schema.TryGetProperty("enum", out var values))
        {
            if (values.ValueKind != JsonValueKind.Array || values.GetArrayLength() == 0)
            {
                throw new UnsupportedSchemaException($"{path}/enum: must be a non-empty array.");
            }

            return new LiteralNode(values.EnumerateArray().Select(Compact).Distinct(ByteArrayComparer.Instance).ToList());
        }

        if (schema.TryGetProperty("anyOf", out var anyOf))
        {
            if (anyOf.ValueKind != JsonValueKind.Array || anyOf.GetArrayLength() == 0)
            {
                throw new UnsupportedSchemaException($"{path}/anyOf: must be a non-empty array.");
            }

            if (schema.TryGetProperty("type", out _))
            {
                throw new UnsupportedSchemaException($"{path}: 'anyOf' beside 'type' is not supported; put the type in each branch.");
            }

            return new AnyOfNode(anyOf.EnumerateArray().Select((s, i) => Node(s, $"{path}/anyOf/{i}")).ToList());
        }

        if (!schema.TryGetProperty("type", out var type))
        {
            return schema.TryGetProperty("properties", out _) ? Typed("object", schema, path) : AnyNode.At(0);
        }

        if (type.ValueKind == JsonValueKind.Array)
        {
            var options = type.EnumerateArray().Select(t => Typed(t.GetString() ?? "", schema, path)).ToList();
            return options.Count == 1 ? options[0] : new AnyOfNode(options);
        }

        return Typed(type.GetString() ?? "", schema, path);
    }

    private SchemaNode Typed(string type, JsonElement schema, string path)
    {
        switch (type)
        {
            case "object":
                return Object(schema, path);
            case "array":
            {
                var items = schema.TryGetProperty("items", out var i) ? Node(i, path + "/items") : AnyNode.At(1);
                var min = Count(schema, "minItems", 0, path);
                var max = Count(schema, "maxItems", int.MaxValue, path);
                if (min > max)
                {
                    throw new UnsupportedSchemaException($"{path}: minItems {min} exceeds maxItems {max}.");
                }

                return new ArrayNode(items, min, max);
            }

            case "string":
            {
                var min = Count(schema, "minLength", 0, path);
                var max = Count(schema, "maxLength", int.MaxValue, path);
                if (min > max)
                {
                    throw new UnsupportedSchemaException($"{path}: minLength {min} exceeds maxLength {max}.");
                }

                return min == 0 && max == int.MaxValue ? StringNode.Free : new StringNode(min, max);
            }

            case "integer":
            case "number":
            {
                var nonNegative = false;
                if (schema.TryGetProperty("minimum", out var minimum))
                {
                    if (minimum.ValueKind != JsonValueKind.Number || minimum.GetDouble() != 0)
                    {
                        throw new UnsupportedSchemaException($"{path}/minimum: only 0 is supported.");
                    }

                    nonNegative = true;
                }

                return new NumberNode(type == "integer", nonNegative);
            }

            case "boolean":
                return new LiteralNode(["true"u8.ToArray(), "false"u8.ToArray()]);
            case "null":
                return new LiteralNode(["null"u8.ToArray()]);
            default:
                throw new UnsupportedSchemaException($"{path}/type: '{type}' is not a JSON Schema type.");
        }
    }

    private ObjectNode Object(JsonElement schema, string path)
    {
        var required = new List<string>();
        if (schema.TryGetProperty("required", out var req))
        {
            required.AddRange(req.EnumerateArray().Select(r => r.GetString() ?? throw new UnsupportedSchemaException($"{path}/required: names must be strings.")));
        }

        if (!schema.TryGetProperty("properties", out var properties) || properties.ValueKind != JsonValueKind.Object)
        {
            if (required.Count > 0)
            {
                throw new UnsupportedSchemaException($"{path}/required: names properties the schema does not describe.");
            }

            return new ObjectNode { FreeForm = true, FreeValues = AnyNode.At(1) };
        }

        var node = new ObjectNode();
        foreach (var property in properties.EnumerateObject())
        {
            node.Properties.Add(new PropertyNode(Compact(property.Name), Node(property.Value, $"{path}/properties/{property.Name}"), required.Contains(property.Name)));
        }

        foreach (var name in required.Where(r => !node.Properties.Any(p => p.Key.AsSpan().SequenceEqual(Compact(r)))))
        {
            throw new UnsupportedSchemaException($"{path}/required: '{name}' is not in properties.");
        }

        return node;
    }

    private SchemaNode Ref(string reference, string path)
    {
        if (_refs.TryGetValue(reference, out var known))
        {
            return known;
        }

        var node = new RefNode(() =>
        {
            if (reference == "#")
            {
                return Node(_root, "#");
            }

            foreach (var prefix in new[] { "#/$defs/", "#/definitions/" })
            {
                if (reference.StartsWith(prefix, StringComparison.Ordinal))
                {
                    var name = reference[prefix.Length..];
                    var container = prefix[2..^1];
                    if (_root.TryGetProperty(container, out var defs) && defs.TryGetProperty(name, out var target))
                    {
                        return Node(target, reference);
                    }
                }
            }

            throw new UnsupportedSchemaException($"{path}/$ref: '{reference}' does not resolve (supported: #, #/$defs/Name, #/definitions/Name).");
        });
        _refs[reference] = node;
        return node;
    }

    private static int Count(JsonElement schema, string keyword, int fallback, string path)
    {
        if (!schema.TryGetProperty(keyword, out var value))
        {
            return fallback;
        }

        if (value.ValueKind != JsonValueKind.Number || !value.TryGetInt32(out var n) || n < 0)
        {
            throw new UnsupportedSchemaException($"{path}/{keyword}: must be a non-negative integer.");
        }

        return n;
    }

    // Relaxed escaping: "a+b" stays a+b rather than a\u002Bb (both are valid JSON; this is what a model would write).
    private static readonly JsonSerializerOptions CompactJson = new() { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    private static byte[] Compact(JsonElement value) => JsonSerializer.SerializeToUtf8Bytes(value, CompactJson);

    private static byte[] Compact(string text) => JsonSerializer.SerializeToUtf8Bytes(text, CompactJson);

    private sealed class ByteArrayComparer : IEqualityComparer<byte[]>
    {
        public static readonly ByteArrayComparer Instance = new();

        public bool Equals(byte[]? x, byte[]? y) => x.AsSpan().SequenceEqual(y);

        public int GetHashCode(byte[] obj)
        {
            var hash = new HashCode();
            hash.AddBytes(obj);
            return hash.ToHashCode();
        }
    }
}
