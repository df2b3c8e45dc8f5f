using System.Text;

namespace AspireAi.Inference.Tokenization;

/// <summary>
/// The token table shared by the tokenizers: pieces as stored, scores (SentencePiece), kinds, the piece → id index
/// (searchable by span, so lookups during tokenization allocate nothing) and the special ids.
/// </summary>
public sealed class Vocabulary
{
    private readonly Dictionary<string, int> _ids;
    private readonly int[] _byteTokens;

    public Vocabulary(string[] pieces, float[]? scores, TokenKind[]? kinds)
    {
        if (pieces.Length == 0)
        {
            throw new ArgumentException("A vocabulary needs at least one token.", nameof(pieces));
        }

        Pieces = pieces;
        Scores = scores ?? new float[pieces.Length];
        Kinds = kinds ?? Enumerable.Repeat(TokenKind.Normal, pieces.Length).ToArray();
        if (Scores.Length < pieces.Length || Kinds.Length < pieces.Length)
        {
            throw new ArgumentException($"{pieces.Length} tokens but {Scores.Length} scores and {Kinds.Length} token types.");
        }

        _ids = new Dictionary<string, int>(pieces.Length, StringComparer.Ordinal);
        for (var i = 0; i < pieces.Length; i++)
        {
            // As llama.cpp (token_to_id[word] = i): a repeated piece maps to its last id.
            _ids[pieces[i]] = i;
        }

        Lookup = _ids.GetAlternateLookup<ReadOnlySpan<char>>();
        _byteTokens = new int[256];
        for (var b = 0; b < 256; b++)
        {
            _byteTokens[b] = _ids.GetValueOrDefault($"<0x{b:X2}>", -1);
        }
    }

    public string[] Pieces { get; }

    public float[] Scores { get; }

    public TokenKind[] Kinds { get; }

    public int Count => Pieces.Length;

    public int BosId { get; init; } = -1;

    public int EosId { get; init; } = -1;

    public int UnknownId { get; init; } = -1;

    /// <summary>Ids that end generation besides EOS (end-of-turn, end-of-message).</summary>
    public IReadOnlyList<int> ExtraEndOfGenerationIds { get; init; } = [];

    /// <summary>A Hugging Face <c>tokenizer.json</c>'s <c>added_tokens</c> and how each is matched; when set, added tokens are
    /// cut out of text as Hugging Face does (<see cref="AddedTokens"/>), else as llama.cpp does (GGUF).</summary>
    public IReadOnlyDictionary<int, AddedTokenOptions>? AddedTokenOptions { get; init; }

    internal Dictionary<string, int>.AlternateLookup<ReadOnlySpan<char>> Lookup { get; }

    public int IdOf(ReadOnlySpan<char> piece) => Lookup.TryGetValue(piece, out var id) ? id : -1;

    /// <summary>The <c>&lt;0xNN&gt;</c> byte-fallback token of <paramref name="b"/>, or -1.</summary>
    public int ByteToken(byte b) => _byteTokens[b];

    /// <summary>Ids matched as whole tokens in text before tokenizing the rest: control, user-defined and unknown
    /// tokens, longest first (llama.cpp's <c>cache_special_tokens</c>).</summary>
    internal int[] SpecialTokensLongestFirst() => Enumerable.Range(0, Count)
        .Where(i => Kinds[i] is TokenKind.Control or TokenKind.UserDefined or TokenKind.Unknown && Pieces[i].Length > 0)
        .OrderByDescending(i => Encoding.UTF8.GetByteCount(Pieces[i])).ThenBy(i => i)
        .ToArray();
}
