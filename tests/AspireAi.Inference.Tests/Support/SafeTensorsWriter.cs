using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;
using AspireAi.Inference.Backends.Cpu;

namespace AspireAi.Inference.Tests.Support;

/// <summary>
/// Writes <c>.safetensors</c> files for tests as the Python <c>safetensors</c> library lays them out: an 8-byte little-endian
/// header length, the JSON header (<c>__metadata__</c> first, tensors with dtype, shape and data_offsets) padded with spaces
/// to a multiple of 8, then the tensors' bytes back to back in the order added. Any dtype name and raw bytes, so tests can
/// also write files the reader must refuse.
/// </summary>
public sealed class SafeTensorsWriter
{
    private readonly List<(string Name, string DType, long[] Shape, byte[] Data)> _tensors = [];

    public Dictionary<string, string> Metadata { get; } = new() { ["format"] = "pt" };

    public IReadOnlyList<string> Names => _tensors.Select(t => t.Name).ToList();

    public SafeTensorsWriter Add(string name, string dtype, long[] shape, byte[] data)
    {
        _tensors.Add((name, dtype, shape, data));
        return this;
    }

    public SafeTensorsWriter AddF32(string name, float[] values, params long[] shape) =>
        Add(name, "F32", shape, MemoryMarshal.AsBytes(values.AsSpan()).ToArray());

    /// <summary>Values in <paramref name="dtype"/> (F32, F16 or BF16; F16/BF16 rounded to nearest even).</summary>
    public SafeTensorsWriter Add(string name, string dtype, float[] values, params long[] shape) =>
        Add(name, dtype, shape, FloatCodec.Encode(dtype, values));

    /// <summary>The header JSON as written (before padding).</summary>
    public string HeaderJson()
    {
        using var stream = new MemoryStream();
        using (var json = new Utf8JsonWriter(stream))
        {
            json.WriteStartObject();
            if (Metadata.Count > 0)
            {
                json.WriteStartObject("__metadata__");
                foreach (var (key, value) in Metadata)
                {
                    json.WriteString(key, value);
                }

                json.WriteEndObject();
            }

            long offset = 0;
            foreach (var (name, dtype, shape, data) in _tensors)
            {
                json.WriteStartObject(name);
                json.WriteString("dtype", dtype);
                json.WriteStartArray("shape");
                foreach (var d in shape)
                {
                    json.WriteNumberValue(d);
                }

                json.WriteEndArray();
                json.WriteStartArray("data_offsets");
                json.WriteNumberValue(offset);
                json.WriteNumberValue(offset + data.Length);
                json.WriteEndArray();
                json.WriteEndObject();
                offset += data.Length;
            }

            json.WriteEndObject();
        }

        return Encoding.UTF8.GetString(stream.ToArray());
    }

    /// <summary>The whole file; <paramref name="header"/> replaces the generated header JSON (it is still padded).</summary>
    public byte[] ToArray(string? header = null)
    {
        var headerBytes = Encoding.UTF8.GetBytes(header ?? HeaderJson());
        var padded = (headerBytes.Length + 7) / 8 * 8;
        var data = _tensors.SelectMany(t => t.Data).ToArray();
        var file = new byte[8 + padded + data.Length];
        BinaryPrimitives.WriteUInt64LittleEndian(file, (ulong)padded);
        headerBytes.CopyTo(file, 8);
        file.AsSpan(8 + headerBytes.Length, padded - headerBytes.Length).Fill((byte)' ');
        data.CopyTo(file, 8 + padded);
        return file;
    }

    public string WriteTo(string path)
    {
        File.WriteAllBytes(path, ToArray());
        return path;
    }
}

/// <summary>Float32 ↔ F32/F16/BF16 bytes, written plainly (not the engine's code) for building and checking test tensors.</summary>
public static class FloatCodec
{
    public static byte[] Encode(string dtype, float[] values)
    {
        var size = dtype == "F32" ? 4 : 2;
        var bytes = new byte[values.Length * size];
        for (var i = 0; i < values.Length; i++)
        {
            switch (dtype)
            {
                case "F32":
                    BinaryPrimitives.WriteSingleLittleEndian(bytes.AsSpan(4 * i), values[i]);
                    break;
                case "F16":
                    BinaryPrimitives.WriteHalfLittleEndian(bytes.AsSpan(2 * i), (Half)values[i]);
                    break;
                case "BF16":
                    BinaryPrimitives.WriteUInt16LittleEndian(bytes.AsSpan(2 * i), BFloat16Row.Round(values[i]));
                    break;
                default:
                    throw new ArgumentException($"No float encoding for {dtype}");
            }
        }

        return bytes;
    }

    public static float[] Decode(string dtype, ReadOnlySpan<byte> bytes)
    {
        var size = dtype == "F32" ? 4 : 2;
        var values = new float[bytes.Length / size];
        for (var i = 0; i < values.Length; i++)
        {
            values[i] = dtype switch
            {
                "F32" => BinaryPrimitives.ReadSingleLittleEndian(bytes[(4 * i)..]),
                "F16" => (float)BinaryPrimitives.ReadHalfLittleEndian(bytes[(2 * i)..]),
                "BF16" => BitConverter.UInt32BitsToSingle((uint)BinaryPrimitives.ReadUInt16LittleEndian(bytes[(2 * i)..]) << 16),
                _ => throw new ArgumentException($"No float decoding for {dtype}"),
            };
        }

        return values;
    }

    /// <summary>Rounds each value to what <paramref name="dtype"/> can hold, so encode → decode gives it back exactly.</summary>
    public static float[] RoundTo(string dtype, float[] values) => Decode(dtype, Encode(dtype, values));
}
