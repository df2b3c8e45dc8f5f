using System.Text;

namespace AspireAi.Inference.Tokenization;

/// <summary>
/// Turns generated tokens into text as they come, holding back the bytes of a UTF-8 character split across tokens
/// (byte-fallback pieces, byte-level BPE) until it is complete, so a stream never shows half a character or U+FFFD.
/// One per sequence; not thread-safe.
/// </summary>
public sealed class StreamingDetokenizer(ITokenizer tokenizer, bool includeSpecial = false)
{
    // Throws never: malformed bytes become U+FFFD, but only once the decoder knows they cannot complete a character.
    private readonly Decoder _decoder = new UTF8Encoding(false, false).GetDecoder();
    private char[] _chars = new char[64];

    /// <summary>Adds one token; returns the text it completes (possibly empty).</summary>
    public string Push(int id) => Convert(tokenizer.TokenBytes(id, includeSpecial), flush: false);

    /// <summary>Ends the sequence: returns any held-back bytes (as U+FFFD when they never formed a character).</summary>
    public string Flush() => Convert([], flush: true);

    private string Convert(ReadOnlySpan<byte> bytes, bool flush)
    {
        var needed = _decoder.GetCharCount(bytes, flush);
        if (needed > _chars.Length)
        {
            _chars = new char[Math.Max(needed, _chars.Length * 2)];
        }

        var written = _decoder.GetChars(bytes, _chars, flush);
        return written == 0 ? string.Empty : new string(_chars, 0, written);
    }
}
