using System.Text;

namespace AspireAi.Inference.Models.Gguf;

/// <summary>
/// Writes a GGUF v3 file front to back as llama.cpp's <c>gguf_write_to_file</c> lays it out: header, key/values in the order
/// added, tensor infos, padding to 32 bytes, then each tensor's data padded to 32 bytes. Tensor data is streamed from a
/// callback, so a converter never holds the whole model in memory.
/// </summary>
internal sealed class GgufFileWriter
{
    private const uint Alignment = 32;

    private readonly List<(string Key, Action<BinaryWriter> Write)> _metadata = [];
    private readonly List<(string Name, GgmlType Type, long[] Shape, long Bytes, Action<Stream> WriteData)> _tensors = [];

    public GgufFileWriter Add(string key, string value) => Scalar(key, GgufValueType.String, w => WriteString(w, value));

    public GgufFileWriter Add(string key, uint value) => Scalar(key, GgufValueType.UInt32, w => w.Write(value));

    public GgufFileWriter Add(string key, float value) => Scalar(key, GgufValueType.Float32, w => w.Write(value));

    public GgufFileWriter Add(string key, bool value) => Scalar(key, GgufValueType.Bool, w => w.Write(value));

    public GgufFileWriter Add(string key, string[] values) => Array(key, GgufValueType.String, values.Length, w =>
    {
        foreach (var value in values)
        {
            WriteString(w, value);
        }
    });

    public GgufFileWriter Add(string key, float[] values) => Array(key, GgufValueType.Float32, values.Length, w =>
    {
        foreach (var value in values)
        {
            w.Write(value);
        }
    });

    public GgufFileWriter Add(string key, int[] values) => Array(key, GgufValueType.Int32, values.Length, w =>
    {
        foreach (var value in values)
        {
            w.Write(value);
        }
    });

    /// <summary>A tensor whose bytes <paramref name="writeData"/> writes to the stream it is given (exactly the type's size for the shape).</summary>
    public GgufFileWriter AddTensor(string name, GgmlType type, long[] shape, Action<Stream> writeData)
    {
        var bytes = GgmlTypeInfo.RowBytes(type, shape[0]) * shape.Skip(1).Aggregate(1L, (a, b) => a * b);
        _tensors.Add((name, type, shape, bytes, writeData));
        return this;
    }

    /// <param name="output">A seekable stream positioned at the start of the file.</param>
    public void WriteTo(Stream output)
    {
        using var w = new BinaryWriter(output, Encoding.UTF8, leaveOpen: true);
        w.Write("GGUF"u8);
        w.Write(3u);
        w.Write((ulong)_tensors.Count);
        w.Write((ulong)_metadata.Count);
        foreach (var (key, write) in _metadata)
        {
            WriteString(w, key);
            write(w);
        }

        long offset = 0;
        foreach (var (name, type, shape, bytes, _) in _tensors)
        {
            WriteString(w, name);
            w.Write((uint)shape.Length);
            foreach (var dimension in shape)
            {
                w.Write((ulong)dimension);
            }

            w.Write((uint)type);
            w.Write((ulong)offset);
            offset = Pad(offset + bytes);
        }

        w.Flush();
        PadStream(output);
        foreach (var (name, _, _, bytes, writeData) in _tensors)
        {
            var start = output.Position;
            writeData(output);
            if (output.Position - start != bytes)
            {
                throw new InvalidOperationException($"Tensor '{name}' wrote {output.Position - start} bytes, expected {bytes}.");
            }

            PadStream(output);
        }
    }

    private static long Pad(long n) => (n + Alignment - 1) / Alignment * Alignment;

    private static void PadStream(Stream output)
    {
        Span<byte> zeros = stackalloc byte[(int)Alignment];
        zeros.Clear();
        output.Write(zeros[..(int)(Pad(output.Position) - output.Position)]);
    }

    private GgufFileWriter Scalar(string key, GgufValueType type, Action<BinaryWriter> write)
    {
        _metadata.Add((key, w => { w.Write((uint)type); write(w); }));
        return this;
    }

    private GgufFileWriter Array(string key, GgufValueType elementType, int count, Action<BinaryWriter> write)
    {
        _metadata.Add((key, w =>
        {
            w.Write((uint)GgufValueType.Array);
            w.Write((uint)elementType);
            w.Write((ulong)count);
            write(w);
        }));
        return this;
    }

    private static void WriteString(BinaryWriter w, string s)
    {
        var bytes = Encoding.UTF8.GetBytes(s);
        w.Write((ulong)bytes.Length);
        w.Write(bytes);
    }
}
