namespace AspireAi.Inference.Serving.StructuredOutput;

/// <summary>
/// A JSON value shape the constrained decoder can enforce, compiled from a JSON Schema (<see cref="JsonSchemaCompiler"/>).
/// <see cref="MinLength"/> is the fewest bytes of a valid value, which lets generation steer to an end within max_tokens.
/// </summary>
internal abstract class SchemaNode
{
    /// <summary>Larger than any real output: a shape with no finite value (a required recursion).</summary>
    public const int Unbounded = 1 << 24;

    private int _minLength = -1;
    private bool _computing;

    public int MinLength
    {
        get
        {
            if (_minLength >= 0)
            {
                return _minLength;
            }

            if (_computing)
            {
                return Unbounded; // a cycle: the value must take another branch
            }

            _computing = true;
            var length = Math.Min(Unbounded, ComputeMinLength());
            _computing = false;
            _minLength = length;
            return length;
        }
    }

    protected abstract int ComputeMinLength();
}

/// <summary>Any JSON value; nesting deeper than <see cref="MaxDepth"/> is limited to scalars (keeps free-form output finite).</summary>
internal sealed class AnyNode : SchemaNode
{
    public const int MaxDepth = 8;
    private static readonly AnyNode[] Levels = Enumerable.Range(0, MaxDepth + 1).Select(d => new AnyNode(d)).ToArray();

    private AnyNode(int depth) => Depth = depth;

    public int Depth { get; }

    public static AnyNode At(int depth) => Levels[Math.Min(depth, MaxDepth)];

    public AnyNode Child => At(Depth + 1);

    public bool ContainersAllowed => Depth < MaxDepth;

    protected override int ComputeMinLength() => 1; // a digit
}

/// <summary>An object: the listed properties in order (each optional one may be left out), or any keys when <see cref="FreeForm"/>.</summary>
internal sealed class ObjectNode : SchemaNode
{
    public List<PropertyNode> Properties { get; } = [];

    public bool FreeForm { get; init; }

    /// <summary>Value shape of a free-form object's members.</summary>
    public SchemaNode? FreeValues { get; init; }

    /// <summary>Fewest bytes to finish the object when the next property to consider is <paramref name="index"/>:
    /// <paramref name="first"/> when no member was written yet (no comma before the next one).</summary>
    public int CostToClose(int index, bool first)
    {
        var cost = 1; // '}'
        var needComma = !first;
        for (var i = index; i < Properties.Count; i++)
        {
            var p = Properties[i];
            if (!p.Required)
            {
                continue;
            }

            cost = Math.Min(SchemaNode.Unbounded, cost + (needComma ? 1 : 0) + p.Key.Length + 1 + p.Value.MinLength);
            needComma = true;
        }

        return cost;
    }

    /// <summary>Whether any required property lies in [from, to).</summary>
    public bool RequiredBetween(int from, int to)
    {
        for (var i = from; i < to && i < Properties.Count; i++)
        {
            if (Properties[i].Required)
            {
                return true;
            }
        }

        return false;
    }

    protected override int ComputeMinLength() => FreeForm ? 2 : 1 + CostToClose(0, first: true);
}

/// <summary>A property: its key as JSON text (quotes included), its value shape, whether it must appear.</summary>
internal sealed record PropertyNode(byte[] Key, SchemaNode Value, bool Required);

internal sealed class ArrayNode(SchemaNode items, int minItems, int maxItems) : SchemaNode
{
    public SchemaNode Items { get; } = items;

    public int MinItems { get; } = minItems;

    public int MaxItems { get; } = maxItems;

    public int CostToClose(int count) => count >= MinItems ? 1 : Math.Min(Unbounded, (MinItems - count) * (1 + Items.MinLength) + 1);

    protected override int ComputeMinLength() =>
        MinItems == 0 ? 2 : Math.Min(Unbounded, 2 + MinItems * Items.MinLength + (MinItems - 1));
}

/// <summary>A string of <see cref="MinChars"/>…<see cref="MaxChars"/> characters.</summary>
internal sealed class StringNode(int minChars, int maxChars) : SchemaNode
{
    public static readonly StringNode Free = new(0, int.MaxValue);

    public int MinChars { get; } = minChars;

    public int MaxChars { get; } = maxChars;

    public bool TracksLength => MinChars > 0 || MaxChars < int.MaxValue;

    protected override int ComputeMinLength() => 2 + MinChars;
}

/// <summary>A JSON number without exponent: an integer when <see cref="Integer"/>; never negative when <see cref="NonNegative"/>.</summary>
internal sealed class NumberNode(bool integer, bool nonNegative) : SchemaNode
{
    public bool Integer { get; } = integer;

    public bool NonNegative { get; } = nonNegative;

    protected override int ComputeMinLength() => 1;
}

/// <summary>One of a fixed set of values (enum, const, true/false, null), each as its compact JSON bytes.</summary>
internal sealed class LiteralNode(IReadOnlyList<byte[]> values) : SchemaNode
{
    public IReadOnlyList<byte[]> Values { get; } = values;

    protected override int ComputeMinLength() => Values.Min(v => v.Length);
}

internal sealed class AnyOfNode(IReadOnlyList<SchemaNode> options) : SchemaNode
{
    public IReadOnlyList<SchemaNode> Options { get; } = options;

    protected override int ComputeMinLength() => Options.Min(o => o.MinLength);
}

/// <summary>A <c>$ref</c>, resolved on first use (schemas may refer to themselves).</summary>
internal sealed class RefNode(Func<SchemaNode> resolve) : SchemaNode
{
    private SchemaNode? _target;

    public SchemaNode Target => _target ??= resolve();

    protected override int ComputeMinLength() => Target.MinLength;
}
