namespace AspireAi.Inference.Models.Gguf;

/// <summary>
/// One metadata value. Scalars are held as their CLR type (<see cref="uint"/>, <see cref="float"/>, <see cref="string"/>, …);
/// arrays as a typed CLR array (<c>string[]</c>, <c>float[]</c>, <c>int[]</c>, …) with <see cref="ElementType"/> set.
/// </summary>
public sealed record GgufValue(GgufValueType Type, object Value, GgufValueType? ElementType = null)
{
    public bool IsArray => Type == GgufValueType.Array;

    public override string ToString() => IsArray ? $"array of {ElementType} [{((Array)Value).Length}]" : $"{Type} {Value}";
}
