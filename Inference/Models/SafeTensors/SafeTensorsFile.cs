using System.Buffers.Binary;
using System.Text.Json;

namespace AspireAi.Inference.Models.SafeTensors;

/// <summary>One tensor of a safetensors file: shape in PyTorch order (<c>Shape[^1]</c> is contiguous), data offset from the file's start.</summary>
public sealed record SafeTensorInfo(string Name, SafeTensorsDType DType, long[] Shape, long FileOffset, long ByteLength)
{
    public long ElementCount => Shape.Aggregate(1L, (a, b) => a * b);
}

/// <summary>
/// A <c>.safetensors</c> file (Hugging Face's format: an 8-byte little-endian header length, a JSON header naming each
/// tensor's dtype, shape and <c>data_offsets</c> within the data section, then the data), memory-mapped read-only.
/// The header is validated as the reference implementation does, so a damaged file ends in a <see cref="ModelFormatException"/>
/// naming the file, the tensor and the problem; the data is never copied.
/// </summary>
public sealed unsafe class SafeTensorsFile : IDisposable
{
    // The reference implementation's MAX_HEADER_SIZE: a header of more than 100 MB is refused before it is read.
    private const long MaxHeaderBytes = 100_000_000;
    private const string MetadataKey = "__metadata__";

    private readonly MappedFile _file;
    private readonly Dictionary<string, SafeTensorInfo> _byName;

    private SafeTensorsFile(string path, MappedFile file)
    {
        Path = path;
        _file = file;
        if (file.Length < 8)
        {
            throw Error(null, $"file is truncated: {file.Length} bytes, but a safetensors file starts with an 8-byte header length");
        }

        var headerLength = BinaryPrimitives.ReadUInt64LittleEndian(file.Span(0, 8));
        if (headerLength > MaxHeaderBytes)
        {
            throw Error(null, $"header length {headerLength} exceeds the format's limit of {MaxHeaderBytes} bytes");
        }

        if ((long)headerLength > file.Length - 8)
        {
            throw Error(null, $"file is truncated: the header claims {headerLength} bytes, but only {file.Length - 8} follow the length field");
        }

        DataOffset = 8 + (long)headerLength;
        var tensors = ParseHeader(file.Span(8, (int)headerLength), out var metadata);
        Metadata = metadata;
        CheckLayout(tensors, file.Length - DataOffset);
        Tensors = tensors;
        _byName = tensors.ToDictionary(t => t.Name, StringComparer.Ordinal);
    }

    /// <summary>Maps <paramref name="path"/> and validates its header.</summary>
    /// <exception cref="ModelFormatException">Not a usable safetensors file; the message says where and why.</exception>
    /// <exception cref="FileNotFoundException">No such file.</exception>
    public static SafeTensorsFile Open(string path)
    {
        var file = MappedFile.Open(path);
        try
        {
            return new SafeTensorsFile(path, file);
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    public string Path { get; }

    /// <summary>File offset of the data section (8 + the header length).</summary>
    public long DataOffset { get; }

    /// <summary>The header's <c>__metadata__</c> strings (e.g. <c>format: pt</c>).</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; }

    /// <summary>All tensors in header order.</summary>
    public IReadOnlyList<SafeTensorInfo> Tensors { get; }

    public SafeTensorInfo? FindTensor(string name) => _byName.GetValueOrDefault(name);

    /// <summary>The address of the tensor's first byte inside the map (valid until disposed).</summary>
    public nint Address(SafeTensorInfo tensor) => (nint)(_file.Start + tensor.FileOffset);

    public void Dispose() => _file.Dispose();

    public override string ToString() => $"{Path} (safetensors, {Tensors.Count} tensors)";

    private ModelFormatException Error(string? tensor, string problem) => new(Path, tensor is null ? null : $"tensor '{tensor}'", problem);

    private List<SafeTensorInfo> ParseHeader(ReadOnlySpan<byte> header, out Dictionary<string, string> metadata)
    {
        // The reference implementation requires the JSON to start at the first byte (and allows trailing spaces as padding).
        if (header.Length == 0 || header[0] != (byte)'{')
        {
            throw Error(null, "header is not a JSON object (it must start with '{')");
        }

        if (!System.Text.Unicode.Utf8.IsValid(header))
        {
            throw Error(null, "header is not valid UTF-8");
        }

        JsonDocument document;
        long consumed;
        try
        {
            var reader = new Utf8JsonReader(header, new JsonReaderOptions { MaxDepth = 8 });
            document = JsonDocument.ParseValue(ref reader);
            consumed = reader.BytesConsumed;
        }
        catch (JsonException e)
        {
            throw Error(null, $"header is not valid JSON: {e.Message}");
        }

        using (document)
        {
            if (header[(int)consumed..].TrimEnd((byte)' ').Length != 0)
            {
                throw Error(null, $"header has bytes other than space padding after its JSON (from byte {8 + consumed})");
            }

            try
            {
                return ReadEntries(document.RootElement, out metadata);
            }
            catch (InvalidOperationException e)
            {
                // A \uD800-style escape that is not valid Unicode: System.Text.Json refuses to transcode it.
                throw Error(null, $"header has a string that is not valid Unicode: {e.Message}");
            }
        }
    }

    private List<SafeTensorInfo> ReadEntries(JsonElement root, out Dictionary<string, string> metadata)
    {
        metadata = new Dictionary<string, string>(StringComparer.Ordinal);
        var tensors = new List<SafeTensorInfo>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var property in root.EnumerateObject())
        {
            if (!seen.Add(property.Name))
            {
                throw Error(property.Name == MetadataKey ? null : property.Name, $"'{property.Name}' appears twice in the header");
            }

            if (property.Name == MetadataKey)
            {
                metadata = ParseMetadata(property.Value);
            }
            else
            {
                tensors.Add(ParseTensor(property.Name, property.Value));
            }
        }

        return tensors;
    }

    private Dictionary<string, string> ParseMetadata(JsonElement value)
    {
        if (value.ValueKind != JsonValueKind.Object)
        {
            throw Error(null, $"header field '{MetadataKey}' must be an object of strings, found {value.ValueKind}");
        }

        var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var entry in value.EnumerateObject())
        {
            if (entry.Value.ValueKind != JsonValueKind.String)
            {
                throw Error(null, $"header field '{MetadataKey}.{entry.Name}' must be a string, found {entry.Value.ValueKind}");
            }

            metadata[entry.Name] = entry.Value.GetString()!;
        }

        return metadata;
    }

    private SafeTensorInfo ParseTensor(string name, JsonElement value)
    {
        if (name.Length == 0)
        {
            throw Error(name, "has an empty name");
        }

        if (value.ValueKind != JsonValueKind.Object)
        {
            throw Error(name, $"entry must be an object with dtype, shape and data_offsets, found {value.ValueKind}");
        }

        var dtypeName = value.TryGetProperty("dtype", out var d) && d.ValueKind == JsonValueKind.String
            ? d.GetString()!
            : throw Error(name, "has no string 'dtype'");
        if (!SafeTensorsDTypes.TryParse(dtypeName, out var dtype))
        {
            throw Error(name, SafeTensorsDTypes.IsKnown(dtypeName)
                ? $"has dtype {dtypeName}, which this engine does not read; supported: {SafeTensorsDTypes.SupportedList}"
                : $"has dtype '{dtypeName}', which is not a safetensors dtype");
        }

        if (!value.TryGetProperty("shape", out var shapeJson) || shapeJson.ValueKind != JsonValueKind.Array)
        {
            throw Error(name, "has no 'shape' array");
        }

        var shape = new long[shapeJson.GetArrayLength()];
        var elements = 1L;
        for (var i = 0; i < shape.Length; i++)
        {
            if (shapeJson[i].ValueKind != JsonValueKind.Number || !shapeJson[i].TryGetInt64(out var n) || n < 0)
            {
                throw Error(name, $"shape dimension {i} ({shapeJson[i].GetRawText()}) is not a non-negative integer");
            }

            shape[i] = n;
            elements = n != 0 && elements > long.MaxValue / 4 / n
                ? throw Error(name, $"shape [{string.Join(", ", shape.Take(i + 1))}] has more elements than fit in 64 bits")
                : elements * n;
        }

        if (!value.TryGetProperty("data_offsets", out var offsets) || offsets.ValueKind != JsonValueKind.Array || offsets.GetArrayLength() != 2)
        {
            throw Error(name, "has no 'data_offsets' pair [begin, end]");
        }

        if (!TryOffset(offsets[0], out var begin) || !TryOffset(offsets[1], out var end))
        {
            throw Error(name, $"data_offsets {offsets.GetRawText()} are not two non-negative integers");
        }

        if (end < begin)
        {
            throw Error(name, $"data_offsets [{begin}, {end}] end before they begin");
        }

        var bytes = elements * SafeTensorsDTypes.Size(dtype);
        if (end - begin != bytes)
        {
            throw Error(name, $"data_offsets [{begin}, {end}] span {end - begin} bytes, but {dtype} [{string.Join(", ", shape)}] takes {bytes}");
        }

        // Offsets are relative to the data section; CheckLayout bounds them by its size.
        return new SafeTensorInfo(name, dtype, shape, begin, bytes);

        static bool TryOffset(JsonElement e, out long v)
        {
            v = 0;
            return e.ValueKind == JsonValueKind.Number && e.TryGetInt64(out v) && v >= 0;
        }
    }

    private void CheckLayout(List<SafeTensorInfo> tensors, long dataLength)
    {
        foreach (var t in tensors)
        {
            if (t.FileOffset + t.ByteLength > dataLength)
            {
                throw Error(t.Name, $"data_offsets [{t.FileOffset}, {t.FileOffset + t.ByteLength}] run past the end of the data section ({dataLength} bytes; the file is truncated or the header lies)");
            }
        }

        // As the reference implementation: sorted by offset, the tensors tile the data section exactly, without holes or overlaps.
        SafeTensorInfo? previous = null;
        long covered = 0;
        foreach (var t in tensors.OrderBy(t => t.FileOffset).ThenBy(t => t.ByteLength))
        {
            if (t.FileOffset < covered)
            {
                throw Error(t.Name, $"data [{t.FileOffset}, {t.FileOffset + t.ByteLength}) overlaps tensor '{previous!.Name}' [{previous.FileOffset}, {previous.FileOffset + previous.ByteLength})");
            }

            if (t.FileOffset > covered)
            {
                throw Error(t.Name, $"data begins at {t.FileOffset}, leaving a hole of {t.FileOffset - covered} bytes after the previous tensor (the format allows none)");
            }

            covered = t.FileOffset + t.ByteLength;
            previous = t;
        }

        if (covered != dataLength)
        {
            throw Error(null, $"the tensors cover {covered} bytes of the {dataLength}-byte data section; the rest is unaccounted for (a damaged header or extra bytes)");
        }

        for (var i = 0; i < tensors.Count; i++)
        {
            tensors[i] = tensors[i] with { FileOffset = DataOffset + tensors[i].FileOffset };
        }
    }
}
