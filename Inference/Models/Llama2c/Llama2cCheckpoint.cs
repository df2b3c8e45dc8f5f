using System.Buffers.Binary;

namespace AspireAi.Inference.Models.Llama2c;

/// <summary>
/// The header and tensor layout of a legacy (version 0) llama2.c checkpoint, as karpathy's <c>run.c</c> reads it: seven int32
/// (dim, hidden dim, layers, heads, KV heads, vocabulary size, sequence length; a negative vocabulary size means the
/// classifier is not shared with the token embedding), then fp32 tensors one kind after another across all layers:
/// token embedding, attention norms, wq, wk, wv, wo, FFN norms, w1, w2, w3, final norm, the legacy RoPE tables
/// (real and imaginary, seq × head_size / 2 each), then the classifier when not shared.
/// </summary>
internal sealed record Llama2cCheckpoint(int Dim, int HiddenDim, int Layers, int Heads, int KvHeads, int Vocabulary, int SequenceLength, bool SharedClassifier)
{
    public const int HeaderBytes = 7 * sizeof(int);

    // llama2.c's version 1+ exports start with this magic ("ak42" little-endian) and a different layout.
    private const uint VersionedMagic = 0x616b3432;

    public int HeadSize => Dim / Heads;

    public int KvDim => KvHeads * HeadSize;

    /// <summary>Bytes the file must have: the header, every tensor, the RoPE tables and the classifier if unshared.</summary>
    public long FileLength => HeaderBytes + 4 * (Offsets().End + (SharedClassifier ? 0 : (long)Vocabulary * Dim));

    /// <summary>Reads and checks the header of <paramref name="path"/> against its length.</summary>
    public static Llama2cCheckpoint Read(string path)
    {
        using var file = File.OpenRead(path);
        var header = new byte[HeaderBytes];
        if (file.ReadAtLeast(header, HeaderBytes, throwOnEndOfStream: false) < HeaderBytes)
        {
            throw new ModelFormatException(path, null, $"file is truncated: {file.Length} bytes, but a llama2.c checkpoint starts with a {HeaderBytes}-byte header");
        }

        if (BinaryPrimitives.ReadUInt32LittleEndian(header) == VersionedMagic)
        {
            throw new ModelFormatException(path, null, "is a versioned llama2.c export (magic \"ak42\"); only the legacy version 0 layout (export.py --version 0) is supported");
        }

        int Field(int i) => BinaryPrimitives.ReadInt32LittleEndian(header.AsSpan(4 * i));
        string[] names = ["dim", "hidden_dim", "n_layers", "n_heads", "n_kv_heads", "vocab_size", "seq_len"];
        for (var i = 0; i < names.Length; i++)
        {
            // A vocabulary size may be negative (unshared classifier); nothing may be zero or absurd.
            var value = i == 5 ? Math.Abs((long)Field(i)) : Field(i);
            if (value is <= 0 or > 1 << 20)
            {
                throw new ModelFormatException(path, $"header field '{names[i]}'", $"{Field(i)} is not a plausible size");
            }
        }

        var checkpoint = new Llama2cCheckpoint(Field(0), Field(1), Field(2), Field(3), Field(4), Math.Abs(Field(5)), Field(6), Field(5) > 0);
        if (checkpoint.Dim % checkpoint.Heads != 0 || checkpoint.HeadSize % 2 != 0)
        {
            throw new ModelFormatException(path, "header field 'n_heads'", $"{checkpoint.Heads} heads do not split dim {checkpoint.Dim} into heads of an even size");
        }

        if (checkpoint.Heads % checkpoint.KvHeads != 0)
        {
            throw new ModelFormatException(path, "header field 'n_kv_heads'", $"{checkpoint.KvHeads} KV heads do not divide {checkpoint.Heads} heads");
        }

        if (file.Length != checkpoint.FileLength)
        {
            throw new ModelFormatException(path, null, file.Length < checkpoint.FileLength
                ? $"file is truncated: {file.Length} bytes, but a checkpoint of these dimensions has {checkpoint.FileLength}"
                : $"file has {file.Length - checkpoint.FileLength} bytes more than a version 0 checkpoint of these dimensions ({checkpoint.FileLength})");
        }

        return checkpoint;
    }

    /// <summary>Offsets (in floats, after the header) of each tensor kind, covering all layers.</summary>
    public Layout Offsets()
    {
        long dim = Dim, hidden = HiddenDim, layers = Layers, kvDim = KvDim;
        var embedding = 0L;
        var attentionNorm = embedding + Vocabulary * dim;
        var wq = attentionNorm + layers * dim;
        var wk = wq + layers * dim * dim;
        var wv = wk + layers * dim * kvDim;
        var wo = wv + layers * dim * kvDim;
        var ffnNorm = wo + layers * dim * dim;
        var w1 = ffnNorm + layers * dim;
        var w2 = w1 + layers * dim * hidden;
        var w3 = w2 + layers * hidden * dim;
        var finalNorm = w3 + layers * dim * hidden;
        var ropeTables = finalNorm + dim;
        var classifier = ropeTables + 2 * (long)SequenceLength * HeadSize / 2;
        return new Layout(embedding, attentionNorm, wq, wk, wv, wo, ffnNorm, w1, w2, w3, finalNorm, classifier);
    }

    /// <summary>Float offsets of each kind; <see cref="End"/> is where an unshared classifier starts.</summary>
    internal readonly record struct Layout(long Embedding, long AttentionNorm, long Wq, long Wk, long Wv, long Wo, long FfnNorm,
        long W1, long W2, long W3, long FinalNorm, long End);
}
