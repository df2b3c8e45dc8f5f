using System.Runtime.InteropServices;
using System.Text;
using AspireAi.Inference.Models;
using AspireAi.Inference.Models.Gguf;

namespace AspireAi.Inference.Tests.Support;

/// <summary>
/// Writes GGUF v2/v3 files for tests, byte for byte as llama.cpp's <c>gguf_write_to_file</c> lays them out: header, key/values,
/// tensor infos, padding to <see cref="Alignment"/>, then each tensor's raw bytes padded to the alignment.
/// Metadata of every GGUF type (and arrays of them) and tensors of any type number, from raw bytes.
/// Adding an existing key replaces it; <see cref="AddDuplicate"/> and a repeated tensor name make invalid files on purpose.
/// </summary>
public sealed class GgufWriter
{
    private readonly List<(string Key, Action<BinaryWriter> Write)> _metadata = [];
    private readonly List<(string Name, uint Type, long[] Shape, byte[] Data)> _tensors = [];

    public uint Version { get; set; } = 3;

    /// <summary>Data alignment; a value other than 32 is also written as <c>general.alignment</c>.</summary>
    public uint Alignment { get; set; } = 32;

    public GgufWriter Add(string key, byte value) => Scalar(key, GgufValueType.UInt8, w => w.Write(value));
    public GgufWriter Add(string key, sbyte value) => Scalar(key, GgufValueType.Int8, w => w.Write(value));
    public GgufWriter Add(string key, ushort value) => Scalar(key, GgufValueType.UInt16, w => w.Write(value));
    public GgufWriter Add(string key, short value) => Scalar(key, GgufValueType.Int16, w => w.Write(value));
    public GgufWriter Add(string key, uint value) => Scalar(key, GgufValueType.UInt32, w => w.Write(value));
    public GgufWriter Add(string key, int value) => Scalar(key, GgufValueType.Int32, w => w.Write(value));
    public GgufWriter Add(string key, float value) => Scalar(key, GgufValueType.Float32, w => w.Write(value));
    public GgufWriter Add(string key, bool value) => Scalar(key, GgufValueType.Bool, w => w.Write(value));
    public GgufWriter Add(string key, string value) => Scalar(key, GgufValueType.String, w => WriteString(w, value));
    public GgufWriter Add(string key, ulong value) => Scalar(key, GgufValueType.UInt64, w => w.Write(value));
    public GgufWriter Add(string key, long value) => Scalar(key, GgufValueType.Int64, w => w.Write(value));
    public GgufWriter Add(string key, double value) => Scalar(key, GgufValueType.Float64, w => w.Write(value));

    public GgufWriter AddArray(string key, string[] values) => Array(key, GgufValueType.String, values.Length, w =>
    {
        foreach (var v in values)
        {
            WriteString(w, v);
        }
    });

    public GgufWriter AddArray(string key, bool[] values) =>
        Array(key, GgufValueType.Bool, values.Length, w => values.ToList().ForEach(w.Write));

    /// <summary>An array of numbers; the GGUF element type follows <typeparamref name="T"/> (byte → uint8, int → int32, float → float32…).</summary>
    public GgufWriter AddArray<T>(string key, T[] values) where T : unmanaged
    {
        var type = default(T) switch
        {
            byte => GgufValueType.UInt8,
            sbyte => GgufValueType.Int8,
            ushort => GgufValueType.UInt16,
            short => GgufValueType.Int16,
            uint => GgufValueType.UInt32,
            int => GgufValueType.Int32,
            float => GgufValueType.Float32,
            ulong => GgufValueType.UInt64,
            long => GgufValueType.Int64,
            double => GgufValueType.Float64,
            _ => throw new ArgumentException($"{typeof(T)} is not a GGUF number type"),
        };
        var bytes = MemoryMarshal.AsBytes(values.AsSpan()).ToArray();
        return Array(key, type, values.Length, w => w.Write(bytes));
    }

    /// <summary>Writes <paramref name="key"/> a second time (GGUF forbids it; for testing the reader's refusal).</summary>
    public GgufWriter AddDuplicate(string key, uint value)
    {
        _metadata.Add((key, w => { w.Write((uint)GgufValueType.UInt32); w.Write(value); }));
        return this;
    }

    public GgufWriter RemoveKey(string key)
    {
        _metadata.RemoveAll(m => m.Key == key);
        return this;
    }

    /// <summary>Replaces the tensor called <paramref name="name"/> in place (keeping its position), or appends it.</summary>
    public GgufWriter ReplaceTensor(string name, GgmlType type, long[] shape, byte[] data)
    {
        var i = _tensors.FindIndex(t => t.Name == name);
        if (i < 0)
        {
            return AddTensor(name, type, shape, data);
        }

        _tensors[i] = (name, (uint)type, shape, data);
        return this;
    }

    public GgufWriter RemoveTensor(string name)
    {
        _tensors.RemoveAll(t => t.Name == name);
        return this;
    }

    /// <summary>A tensor of <paramref name="type"/> from its raw bytes (which must match the type's size for the shape).</summary>
    public GgufWriter AddTensor(string name, GgmlType type, long[] shape, byte[] data) => AddTensor(name, (uint)type, shape, data);

    /// <summary>A tensor with any type number, including ones the reader must refuse.</summary>
    public GgufWriter AddTensor(string name, uint type, long[] shape, byte[] data)
    {
        _tensors.Add((name, type, shape, data));
        return this;
    }

    public GgufWriter AddF32(string name, float[] values, params long[] shape) =>
        AddTensor(name, GgmlType.F32, shape, MemoryMarshal.AsBytes(values.AsSpan()).ToArray());

    public byte[] ToArray()
    {
        using var stream = new MemoryStream();
        using var w = new BinaryWriter(stream, Encoding.UTF8, leaveOpen: true);
        var metadata = _metadata.ToList();
        if (Alignment != 32)
        {
            metadata.Insert(0, ("general.alignment", bw => { bw.Write((uint)GgufValueType.UInt32); bw.Write(Alignment); }));
        }

        w.Write("GGUF"u8);
        w.Write(Version);
        w.Write((ulong)_tensors.Count);
        w.Write((ulong)metadata.Count);
        foreach (var (key, write) in metadata)
        {
            WriteString(w, key);
            write(w);
        }

        long offset = 0;
        var offsets = new List<long>();
        foreach (var (name, type, shape, data) in _tensors)
        {
            WriteString(w, name);
            w.Write((uint)shape.Length);
            foreach (var d in shape)
            {
                w.Write(d);
            }

            w.Write(type);
            w.Write((ulong)offset);
            offsets.Add(offset);
            offset = Pad(offset + data.Length);
        }

        w.Flush();
        var dataStart = Pad(stream.Length);
        stream.SetLength(dataStart);
        stream.Position = dataStart;
        for (var i = 0; i < _tensors.Count; i++)
        {
            stream.Position = dataStart + offsets[i];
            stream.Write(_tensors[i].Data);
            stream.SetLength(Pad(stream.Length));
            stream.Position = stream.Length;
        }

        return stream.ToArray();
    }

    /// <summary>Writes the file and returns <paramref name="path"/>.</summary>
    public string WriteTo(string path)
    {
        File.WriteAllBytes(path, ToArray());
        return path;
    }

    private long Pad(long n) => (n + Alignment - 1) / Alignment * Alignment;

    // Adding a key that exists replaces its value (in place), so tests can start from a valid file and change one thing.
    private void Set(string key, Action<BinaryWriter> write)
    {
        var i = _metadata.FindIndex(m => m.Key == key);
        if (i >= 0)
        {
            _metadata[i] = (key, write);
        }
        else
        {
            _metadata.Add((key, write));
        }
    }

    private GgufWriter Scalar(string key, GgufValueType type, Action<BinaryWriter> write)
    {
        Set(key, w => { w.Write((uint)type); write(w); });
        return this;
    }

    private GgufWriter Array(string key, GgufValueType elementType, int count, Action<BinaryWriter> write)
    {
        Set(key, w =>
        {
            w.Write((uint)GgufValueType.Array);
            w.Write((uint)elementType);
            w.Write((ulong)count);
            write(w);
        });
        return this;
    }

    private static void WriteString(BinaryWriter w, string s)
    {
        var bytes = Encoding.UTF8.GetBytes(s);
        w.Write((ulong)bytes.Length);
        w.Write(bytes);
    }
}
