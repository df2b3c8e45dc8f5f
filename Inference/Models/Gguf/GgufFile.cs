namespace AspireAi.Inference.Models.Gguf;

/// <summary>
/// A GGUF v2/v3 file (llama.cpp's format), memory-mapped read-only: metadata parsed into typed values, tensors left in place
/// and handed out as <see cref="TensorView"/>s that point into the map. Every offset, length and count read from the file is
/// checked against the file's size, so a damaged file ends in a <see cref="ModelFormatException"/> naming the file, the
/// tensor or key and the problem. Disposing unmaps the file; tensor views must not be used after that.
/// </summary>
public sealed unsafe class GgufFile : IModelSource
{
    /// <summary>"GGUF" read as a little-endian uint32.</summary>
    private const uint Magic = 0x46554747;
    private const uint DefaultAlignment = 32;
    // ggml's GGML_MAX_DIMS and GGML_MAX_NAME (the name buffer holds 63 bytes and a NUL).
    private const int MaxDims = 4;
    private const int MaxTensorNameBytes = 63;
    // Smallest tensor-info record: 8-byte name length, 4-byte n_dims, one 8-byte dim, 4-byte type, 8-byte offset.
    private const int MinTensorInfoBytes = 32;

    private readonly MappedFile _file;
    private readonly byte* _base;
    private readonly Dictionary<string, GgufTensorInfo> _tensorsByName;
    private ModelConfig? _config;
    private bool _disposed;

    private GgufFile(string path, MappedFile file)
    {
        Path = path;
        _file = file;
        _base = file.Start;
        FileLength = file.Length;
        // An empty file maps to no bytes at all: it gets the same "truncated" error as any short one.
        var cursor = new GgufCursor(file.Start, file.Length, path);

        var magic = cursor.ReadUInt32(null, "the magic number");
        if (magic != Magic)
        {
            throw cursor.Error(null, $"not a GGUF file: the first four bytes are 0x{magic:X8} (little-endian), expected \"GGUF\" (0x{Magic:X8})");
        }

        Version = cursor.ReadUInt32(null, "the version");
        if (Version is not (2 or 3))
        {
            throw cursor.Error(null, Version == 1
                ? "GGUF version 1 is not supported (only 2 and 3): convert the model again with a current llama.cpp"
                : $"GGUF version {Version} is not supported (only 2 and 3)");
        }

        var tensorCount = cursor.ReadUInt64(null, "the tensor count");
        var metadataCount = cursor.ReadUInt64(null, "the metadata key count");
        Metadata = GgufMetadataReader.Read(ref cursor, metadataCount);

        Alignment = DefaultAlignment;
        if (Metadata.TryGetValue("general.alignment", out var alignment))
        {
            if (alignment.Value is not uint a || a == 0 || (a & (a - 1)) != 0)
            {
                throw cursor.Error("key 'general.alignment'", $"must be a uint32 power of two, but is {alignment}");
            }

            Alignment = a;
        }

        var infos = ReadTensorInfos(ref cursor, tensorCount);
        cursor.Align(Alignment);
        DataOffset = cursor.Position;
        var tensors = new GgufTensorInfo[infos.Count];
        for (var i = 0; i < tensors.Length; i++)
        {
            tensors[i] = LocateData(infos[i], ref cursor);
        }

        Tensors = tensors;
        _tensorsByName = Tensors.ToDictionary(t => t.Name, StringComparer.Ordinal);
    }

    /// <summary>Maps <paramref name="path"/> and validates its header, tensor table and (unless <paramref name="metadataOnly"/>)
    /// the model it describes: architecture, hyperparameters and the presence and shape of every tensor the forward pass reads.</summary>
    /// <param name="metadataOnly">Skip the model checks, e.g. for llama.cpp's vocabulary-only files (read by the tokenizer).</param>
    /// <exception cref="ModelFormatException">The file is not a usable GGUF model; the message says where and why.</exception>
    /// <exception cref="FileNotFoundException">No such file.</exception>
    public static GgufFile Open(string path, bool metadataOnly = false)
    {
        var mapped = MappedFile.Open(path);
        GgufFile file;
        try
        {
            file = new GgufFile(path, mapped);
        }
        catch
        {
            mapped.Dispose();
            throw;
        }

        if (!metadataOnly)
        {
            try
            {
                _ = file.Config;
            }
            catch
            {
                file.Dispose();
                throw;
            }
        }

        return file;
    }

    public string Path { get; }

    /// <summary>GGUF format version (2 or 3).</summary>
    public uint Version { get; }

    public long FileLength { get; }

    /// <summary><c>general.alignment</c>, or 32 when absent.</summary>
    public uint Alignment { get; }

    /// <summary>File offset of the tensor data section.</summary>
    public long DataOffset { get; }

    /// <summary>All metadata, by key.</summary>
    public IReadOnlyDictionary<string, GgufValue> Metadata { get; }

    /// <summary>All tensors in file order.</summary>
    public IReadOnlyList<GgufTensorInfo> Tensors { get; }

    /// <summary><c>general.architecture</c>, or null when absent.</summary>
    public string? Architecture => TryGetString("general.architecture", out var arch) ? arch : null;

    /// <summary>The hyperparameters of the model (built and validated on first use).</summary>
    /// <exception cref="ModelFormatException">The metadata or tensors do not describe a model this engine runs.</exception>
    public ModelConfig Config => _config ??= GgufModelConfig.Build(this);

    public bool TryGetTensor(string name, out TensorView tensor)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (_tensorsByName.TryGetValue(name, out var info))
        {
            tensor = new TensorView(info.Name, info.Type, info.Shape, (nint)(_base + info.FileOffset), info.ByteLength);
            return true;
        }

        tensor = default;
        return false;
    }

    /// <summary>The tensor's info record, or null.</summary>
    public GgufTensorInfo? FindTensor(string name) => _tensorsByName.GetValueOrDefault(name);

    public bool ContainsKey(string key) => Metadata.ContainsKey(key);

    public bool TryGetString(string key, out string value) => TryGet(key, out value);

    public string GetString(string key) => Get<string>(key, "a string");

    public bool TryGetBool(string key, out bool value) => TryGet(key, out value);

    /// <summary>Reads an integer key of any GGUF integer type whose value fits in uint32.</summary>
    public bool TryGetUInt32(string key, out uint value)
    {
        value = 0;
        if (!Metadata.TryGetValue(key, out var v))
        {
            return false;
        }

        var n = AsInteger(key, v);
        value = n is >= 0 and <= uint.MaxValue ? (uint)n : throw KeyError(key, $"value {n} does not fit in uint32");
        return true;
    }

    public uint GetUInt32(string key) => TryGetUInt32(key, out var v) ? v : throw Missing(key);

    /// <summary>Reads an integer key of any GGUF integer type whose value fits in int32.</summary>
    public bool TryGetInt32(string key, out int value)
    {
        value = 0;
        if (!Metadata.TryGetValue(key, out var v))
        {
            return false;
        }

        var n = AsInteger(key, v);
        value = n is >= int.MinValue and <= int.MaxValue ? (int)n : throw KeyError(key, $"value {n} does not fit in int32");
        return true;
    }

    public int GetInt32(string key) => TryGetInt32(key, out var v) ? v : throw Missing(key);

    /// <summary>Reads a float32 or float64 key as float.</summary>
    public bool TryGetFloat32(string key, out float value)
    {
        value = 0;
        if (!Metadata.TryGetValue(key, out var v))
        {
            return false;
        }

        value = v.Value switch
        {
            float f => f,
            double d => (float)d,
            _ => throw KeyError(key, $"expected a float, found {v}"),
        };
        return true;
    }

    public float GetFloat32(string key) => TryGetFloat32(key, out var v) ? v : throw Missing(key);

    public bool TryGetStringArray(string key, out string[] values) => TryGet(key, out values);

    public string[] GetStringArray(string key) => Get<string[]>(key, "an array of strings");

    public bool TryGetFloat32Array(string key, out float[] values) => TryGet(key, out values);

    /// <summary>Reads an array of any 32-bit-or-smaller integer type as int32 (token types are int32; some writers use uint32).</summary>
    public bool TryGetInt32Array(string key, out int[] values)
    {
        values = [];
        if (!Metadata.TryGetValue(key, out var v))
        {
            return false;
        }

        values = v.Value switch
        {
            int[] a => a,
            uint[] a => Array.ConvertAll(a, x => x <= int.MaxValue ? (int)x : throw KeyError(key, $"element {x} does not fit in int32")),
            short[] a => Array.ConvertAll(a, x => (int)x),
            ushort[] a => Array.ConvertAll(a, x => (int)x),
            sbyte[] a => Array.ConvertAll(a, x => (int)x),
            byte[] a => Array.ConvertAll(a, x => (int)x),
            _ => throw KeyError(key, $"expected an array of integers, found {v}"),
        };
        return true;
    }

    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        _file.Dispose();
    }

    public override string ToString() => $"{Path} (GGUF v{Version}, {Tensors.Count} tensors, {Metadata.Count} keys)";

    internal ModelFormatException KeyError(string key, string problem) => new(Path, $"key '{key}'", problem);

    internal ModelFormatException Missing(string key) => KeyError(key, "is required but missing from the metadata");

    private bool TryGet<T>(string key, out T value)
    {
        value = default!;
        if (!Metadata.TryGetValue(key, out var v))
        {
            return false;
        }

        value = v.Value is T t ? t : throw KeyError(key, $"expected {typeof(T).Name}, found {v}");
        return true;
    }

    private T Get<T>(string key, string what) =>
        TryGet<T>(key, out var v) ? v : throw KeyError(key, $"is required ({what}) but missing from the metadata");

    private long AsInteger(string key, GgufValue v) => v.Value switch
    {
        byte x => x,
        sbyte x => x,
        ushort x => x,
        short x => x,
        uint x => x,
        int x => x,
        long x => x,
        ulong x when x <= long.MaxValue => (long)x,
        _ => throw KeyError(key, $"expected an integer, found {v}"),
    };

    private List<(string Name, GgmlType Type, long[] Shape, ulong Offset, long Bytes)> ReadTensorInfos(ref GgufCursor cursor, ulong count)
    {
        cursor.CheckCount(count, MinTensorInfoBytes, null, "the tensor count");
        var infos = new List<(string, GgmlType, long[], ulong, long)>((int)Math.Min(count, 4096));
        var seen = new HashSet<string>(StringComparer.Ordinal);
        for (ulong i = 0; i < count; i++)
        {
            var name = cursor.ReadString($"tensor #{i}", "the tensor name");
            var item = $"tensor '{name}'";
            if (System.Text.Encoding.UTF8.GetByteCount(name) > MaxTensorNameBytes)
            {
                throw cursor.Error(item, $"name is longer than ggml's {MaxTensorNameBytes} bytes");
            }

            if (!seen.Add(name))
            {
                throw cursor.Error(item, $"appears twice in the tensor table (second time as tensor #{i})");
            }

            var dims = cursor.ReadUInt32(item, "the dimension count");
            if (dims is < 1 or > MaxDims)
            {
                throw cursor.Error(item, $"has {dims} dimensions; must be 1..{MaxDims}");
            }

            var shape = new long[dims];
            long elements = 1;
            for (var d = 0; d < dims; d++)
            {
                var ne = (long)cursor.ReadUInt64(item, $"dimension {d}");
                if (ne <= 0)
                {
                    throw cursor.Error(item, $"dimension {d} is {ne}; every dimension must be at least 1");
                }

                shape[d] = ne;
                elements = elements > long.MaxValue / ne
                    ? throw cursor.Error(item, $"shape [{string.Join(", ", shape.Take(d + 1))}] has more elements than fit in 64 bits")
                    : elements * ne;
            }

            var rawType = cursor.ReadUInt32(item, "the tensor type");
            var type = (GgmlType)rawType;
            if (!GgmlTypeInfo.IsSupported(type))
            {
                throw cursor.Error(item, $"has type {GgmlTypeNames.Describe(rawType)}, which this engine does not read; supported: {GgmlTypeNames.SupportedList}");
            }

            var blockSize = GgmlTypeInfo.BlockSize(type);
            if (shape[0] % blockSize != 0)
            {
                throw cursor.Error(item, $"row length {shape[0]} is not a multiple of {type}'s block size {blockSize}");
            }

            var rowBytes = GgmlTypeInfo.RowBytes(type, shape[0]);
            var rows = elements / shape[0];
            if (rows > long.MaxValue / rowBytes)
            {
                throw cursor.Error(item, "size in bytes does not fit in 64 bits");
            }

            var offset = cursor.ReadUInt64(item, "the data offset");
            if (offset % Alignment != 0)
            {
                throw cursor.Error(item, $"data offset {offset} is not a multiple of the file's alignment {Alignment}");
            }

            infos.Add((name, type, shape, offset, rows * rowBytes));
        }

        return infos;
    }

    private GgufTensorInfo LocateData((string Name, GgmlType Type, long[] Shape, ulong Offset, long Bytes) t, ref GgufCursor cursor)
    {
        var available = (ulong)Math.Max(0, FileLength - DataOffset);
        if (t.Offset > available || (ulong)t.Bytes > available - t.Offset)
        {
            throw cursor.Error($"tensor '{t.Name}'",
                $"data ({t.Bytes} bytes at data offset {t.Offset}, file offset {DataOffset + (decimal)t.Offset}) runs past the end of the file ({FileLength} bytes)");
        }

        return new GgufTensorInfo(t.Name, t.Type, t.Shape, DataOffset + (long)t.Offset, t.Bytes);
    }
}
