using System.Runtime.InteropServices;

namespace AspireAi.Inference.Models.Gguf;

/// <summary>Reads the key/value section of a GGUF header into typed CLR values (layout per llama.cpp's gguf.cpp).</summary>
internal static class GgufMetadataReader
{
    public static Dictionary<string, GgufValue> Read(ref GgufCursor cursor, ulong count)
    {
        // A key/value pair is at least an 8-byte key length, a 4-byte type and a 1-byte value.
        cursor.CheckCount(count, 13, null, "the metadata key count");
        var metadata = new Dictionary<string, GgufValue>((int)Math.Min(count, 4096), StringComparer.Ordinal);
        for (ulong i = 0; i < count; i++)
        {
            var key = cursor.ReadString(null, $"metadata key #{i}");
            var item = $"key '{key}'";
            if (metadata.ContainsKey(key))
            {
                throw cursor.Error(item, $"appears twice in the metadata (second time as entry #{i})");
            }

            var type = (GgufValueType)cursor.ReadUInt32(item, "the value type");
            metadata[key] = type == GgufValueType.Array ? ReadArray(ref cursor, item) : new GgufValue(type, ReadScalar(ref cursor, type, item));
        }

        return metadata;
    }

    private static object ReadScalar(ref GgufCursor c, GgufValueType type, string item) => type switch
    {
        GgufValueType.UInt8 => c.ReadUInt8(item, "a uint8 value"),
        GgufValueType.Int8 => (sbyte)c.ReadUInt8(item, "an int8 value"),
        GgufValueType.UInt16 => c.ReadUInt16(item, "a uint16 value"),
        GgufValueType.Int16 => (short)c.ReadUInt16(item, "an int16 value"),
        GgufValueType.UInt32 => c.ReadUInt32(item, "a uint32 value"),
        GgufValueType.Int32 => (int)c.ReadUInt32(item, "an int32 value"),
        GgufValueType.Float32 => BitConverter.UInt32BitsToSingle(c.ReadUInt32(item, "a float32 value")),
        GgufValueType.Bool => c.ReadUInt8(item, "a bool value") != 0,
        GgufValueType.String => c.ReadString(item, "the string value"),
        GgufValueType.UInt64 => c.ReadUInt64(item, "a uint64 value"),
        GgufValueType.Int64 => (long)c.ReadUInt64(item, "an int64 value"),
        GgufValueType.Float64 => BitConverter.UInt64BitsToDouble(c.ReadUInt64(item, "a float64 value")),
        _ => throw c.Error(item, $"has value type {(uint)type}, which is not a GGUF type (0..12)"),
    };

    private static GgufValue ReadArray(ref GgufCursor c, string item)
    {
        var elementType = (GgufValueType)c.ReadUInt32(item, "the array element type");
        var count = c.ReadUInt64(item, "the array length");
        object values = elementType switch
        {
            GgufValueType.UInt8 => ReadNumbers<byte>(ref c, count, item),
            GgufValueType.Int8 => ReadNumbers<sbyte>(ref c, count, item),
            GgufValueType.UInt16 => ReadNumbers<ushort>(ref c, count, item),
            GgufValueType.Int16 => ReadNumbers<short>(ref c, count, item),
            GgufValueType.UInt32 => ReadNumbers<uint>(ref c, count, item),
            GgufValueType.Int32 => ReadNumbers<int>(ref c, count, item),
            GgufValueType.Float32 => ReadNumbers<float>(ref c, count, item),
            GgufValueType.Bool => Array.ConvertAll(ReadNumbers<byte>(ref c, count, item), b => b != 0),
            GgufValueType.UInt64 => ReadNumbers<ulong>(ref c, count, item),
            GgufValueType.Int64 => ReadNumbers<long>(ref c, count, item),
            GgufValueType.Float64 => ReadNumbers<double>(ref c, count, item),
            GgufValueType.String => ReadStrings(ref c, count, item),
            GgufValueType.Array => throw c.Error(item, "is an array of arrays, which GGUF readers (llama.cpp's included) do not support"),
            _ => throw c.Error(item, $"is an array of value type {(uint)elementType}, which is not a GGUF type (0..12)"),
        };
        return new GgufValue(GgufValueType.Array, values, elementType);
    }

    private static unsafe T[] ReadNumbers<T>(ref GgufCursor c, ulong count, string item) where T : unmanaged
    {
        c.CheckCount(count, sizeof(T), item, "the array length");
        var bytes = (long)count * sizeof(T);
        if (bytes > Array.MaxLength)
        {
            throw c.Error(item, $"array of {count} elements is larger than any metadata this engine accepts");
        }

        var values = new T[count];
        c.ReadInto(MemoryMarshal.AsBytes(values.AsSpan()), item, "the array data");
        return values;
    }

    private static string[] ReadStrings(ref GgufCursor c, ulong count, string item)
    {
        // Each string is at least its 8-byte length.
        c.CheckCount(count, 8, item, "the array length");
        if (count > (ulong)Array.MaxLength)
        {
            throw c.Error(item, $"array of {count} strings is larger than any metadata this engine accepts");
        }

        var values = new string[count];
        for (ulong i = 0; i < count; i++)
        {
            values[i] = c.ReadString(item, $"string #{i} of the array");
        }

        return values;
    }
}
