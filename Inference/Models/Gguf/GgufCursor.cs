using System.Buffers.Binary;
using System.Text;

namespace AspireAi.Inference.Models.Gguf;

/// <summary>
/// Reads the little-endian header of a mapped GGUF file, checking every read against the file's length first,
/// so a truncated or lying file ends in a <see cref="ModelFormatException"/> rather than a read past the map.
/// </summary>
internal unsafe struct GgufCursor(byte* start, long length, string path)
{
    // gguf.cpp's GGUF_MAX_STRING_LENGTH; no real key, piece or template comes near it.
    private const long MaxStringLength = 1L << 30;

    public long Position { get; private set; }

    public readonly long Length => length;

    public readonly long Remaining => length - Position;

    public readonly string Path => path;

    public readonly ModelFormatException Error(string? item, string problem) => new(path, item, problem);

    private readonly ReadOnlySpan<byte> Take(long count, string? item, string what)
    {
        if (count < 0 || count > Remaining)
        {
            throw Error(item, $"file is truncated: {what} needs {count} bytes at offset {Position}, only {Remaining} remain");
        }

        return new ReadOnlySpan<byte>(start + Position, (int)count);
    }

    public byte ReadUInt8(string? item, string what) { var b = Take(1, item, what)[0]; Position += 1; return b; }

    public ushort ReadUInt16(string? item, string what) { var v = BinaryPrimitives.ReadUInt16LittleEndian(Take(2, item, what)); Position += 2; return v; }

    public uint ReadUInt32(string? item, string what) { var v = BinaryPrimitives.ReadUInt32LittleEndian(Take(4, item, what)); Position += 4; return v; }

    public ulong ReadUInt64(string? item, string what) { var v = BinaryPrimitives.ReadUInt64LittleEndian(Take(8, item, what)); Position += 8; return v; }

    public void ReadInto(Span<byte> destination, string? item, string what)
    {
        Take(destination.Length, item, what).CopyTo(destination);
        Position += destination.Length;
    }

    public string ReadString(string? item, string what)
    {
        var size = ReadUInt64(item, $"the length of {what}");
        if (size > MaxStringLength || (long)size > Remaining)
        {
            throw Error(item, $"{what} claims {size} bytes at offset {Position - 8}, but only {Remaining} bytes remain in the file");
        }

        var s = Encoding.UTF8.GetString(Take((long)size, item, what));
        Position += (long)size;
        return s;
    }

    /// <summary>Refuses an element count that cannot fit in the rest of the file before anything is allocated for it.</summary>
    public readonly void CheckCount(ulong count, long minBytesEach, string? item, string what)
    {
        if (count > (ulong)(Remaining / minBytesEach))
        {
            throw Error(item, $"{what} is {count}, but the {Remaining} bytes left in the file could hold at most {Remaining / minBytesEach}");
        }
    }

    public void Align(long alignment) => Position = (Position + alignment - 1) / alignment * alignment;
}
