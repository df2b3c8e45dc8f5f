using AspireAi.Inference.Tokenization;

namespace AspireAi.Inference.Serving;

/// <summary>
/// Every token's bytes in text (control tokens: none), computed once per model: the constrained decoder matches them against
/// a grammar, and logprobs report them as OpenAI's <c>token</c>/<c>bytes</c>.
/// </summary>
public sealed class TokenByteTable
{
    private readonly byte[][] _bytes;

    public TokenByteTable(ITokenizer tokenizer)
    {
        _bytes = new byte[tokenizer.VocabularySize][];
        for (var id = 0; id < _bytes.Length; id++)
        {
            _bytes[id] = tokenizer.TokenBytes(id).ToArray();
        }
    }

    public int Count => _bytes.Length;

    public ReadOnlySpan<byte> this[int id] => _bytes[id];

    /// <summary>The token as text (a piece of a multi-byte character shows as U+FFFD, as OpenAI does; the bytes are exact).</summary>
    public string Text(int id) => System.Text.Encoding.UTF8.GetString(_bytes[id]);

    public byte[] Bytes(int id) => _bytes[id];
}
