using System.Text;

namespace AspireAi.Inference.Tokenization;

/// <summary>
/// What both tokenizer families share, after llama.cpp's <c>llama_vocab::impl::tokenize</c>: special tokens in the text are
/// cut out first (longest first), the text between them goes to the model-specific algorithm, BOS/EOS are added as the
/// model asks; decoding concatenates each token's bytes.
/// </summary>
public abstract class TokenizerBase : ITokenizer
{
    private readonly int[] _specialTokens;
    private readonly byte[][] _tokenBytes;
    private readonly HashSet<int> _endOfGeneration;
    private readonly AddedTokens? _addedTokens;

    /// <param name="spacesNormalizedAway">The normalizer turns spaces into ▁ before added tokens marked <c>normalized</c> are
    /// matched (so they strip no spaces).</param>
    /// <param name="normalization">The Unicode normalization the text gets before tokens marked <c>normalized</c> are matched.</param>
    protected TokenizerBase(Vocabulary vocabulary, bool addBos, bool addEos, bool spacesNormalizedAway = false, NormalizationForm? normalization = null)
    {
        Vocabulary = vocabulary;
        AddBos = addBos && vocabulary.BosId >= 0;
        AddEos = addEos && vocabulary.EosId >= 0;
        _specialTokens = vocabulary.SpecialTokensLongestFirst();
        _tokenBytes = new byte[vocabulary.Count][];
        _endOfGeneration = [.. vocabulary.ExtraEndOfGenerationIds];
        _addedTokens = vocabulary.AddedTokenOptions is { } options ? new AddedTokens(vocabulary, options, spacesNormalizedAway, normalization) : null;
        if (vocabulary.EosId >= 0)
        {
            _endOfGeneration.Add(vocabulary.EosId);
        }
    }

    public Vocabulary Vocabulary { get; }

    public int VocabularySize => Vocabulary.Count;

    public int BosId => Vocabulary.BosId;

    public int EosId => Vocabulary.EosId;

    public IReadOnlySet<int> EndOfGenerationIds => _endOfGeneration;

    public bool AddBos { get; }

    public bool AddEos { get; }

    public int[] Encode(ReadOnlySpan<char> text, bool addSpecial = true, bool parseSpecial = true)
    {
        var output = new List<int>(text.Length / 3 + 2);
        if (addSpecial && AddBos)
        {
            output.Add(BosId);
        }

        var previousWasSpecial = true;
        foreach (var (start, length, id, normalized) in Partition(text, parseSpecial))
        {
            if (id >= 0)
            {
                output.Add(id);
                previousWasSpecial = true;
            }
            else
            {
                EncodeText((normalized ?? text).Slice(start, length), previousWasSpecial, output);
                previousWasSpecial = false;
            }
        }

        if (addSpecial && AddEos)
        {
            output.Add(EosId);
        }

        return [.. output];
    }

    public string Decode(ReadOnlySpan<int> ids, bool includeSpecial = false)
    {
        var length = 0;
        foreach (var id in ids)
        {
            length += TokenBytes(id, includeSpecial).Length;
        }

        Span<byte> buffer = length <= 1024 ? stackalloc byte[length] : new byte[length];
        var at = 0;
        foreach (var id in ids)
        {
            var bytes = TokenBytes(id, includeSpecial);
            bytes.CopyTo(buffer[at..]);
            at += bytes.Length;
        }

        return Encoding.UTF8.GetString(buffer);
    }

    public ReadOnlySpan<byte> TokenBytes(int id, bool includeSpecial = false)
    {
        if ((uint)id >= (uint)Vocabulary.Count)
        {
            throw new ArgumentOutOfRangeException(nameof(id), id, $"Token id outside the vocabulary of {Vocabulary.Count}.");
        }

        if (!includeSpecial && Vocabulary.Kinds[id] is TokenKind.Control or TokenKind.Unknown)
        {
            return [];
        }

        // Built on first use and cached: a benign race at worst builds the same bytes twice.
        return _tokenBytes[id] ??= Vocabulary.Kinds[id] switch
        {
            TokenKind.Control or TokenKind.Unknown or TokenKind.UserDefined => Encoding.UTF8.GetBytes(Vocabulary.Pieces[id]),
            TokenKind.Byte when ParseBytePiece(Vocabulary.Pieces[id]) is { } b => [b],
            _ => PieceToBytes(Vocabulary.Pieces[id]),
        };
    }

    public string TokenToPiece(int id) => Vocabulary.Pieces[id];

    public int PieceToId(string piece) => Vocabulary.IdOf(piece);

    public TokenKind GetKind(int id) => Vocabulary.Kinds[id];

    /// <summary>Tokenizes text that holds no special token. <paramref name="afterSpecial"/>: it starts the input or follows a
    /// special token (SentencePiece then prefixes a space).</summary>
    protected abstract void EncodeText(ReadOnlySpan<char> text, bool afterSpecial, List<int> output);

    /// <summary>The text bytes of a normal piece (▁ → space for SentencePiece; the byte-level alphabet undone for GPT-2 BPE).</summary>
    protected abstract byte[] PieceToBytes(string piece);

    private static byte? ParseBytePiece(string piece) =>
        piece.Length == 6 && piece.StartsWith("<0x", StringComparison.Ordinal) && piece[5] == '>' &&
        byte.TryParse(piece.AsSpan(3, 2), System.Globalization.NumberStyles.HexNumber, null, out var b) ? b : null;

    private List<(int Start, int Length, int Id, string? Normalized)> Partition(ReadOnlySpan<char> text, bool parseSpecial) =>
        _addedTokens?.Partition(text, parseSpecial) ?? PartitionAsLlamaCpp(text, parseSpecial);

    /// <summary>
    /// Cuts special tokens out of the text as llama.cpp's <c>tokenizer_st_partition</c> does: each special token in turn,
    /// longest first, splits every remaining plain-text fragment at each of its occurrences. Fragments are (start, length,
    /// -1) for text and (start, length, id) for a token.
    /// </summary>
    private List<(int Start, int Length, int Id, string? Normalized)> PartitionAsLlamaCpp(ReadOnlySpan<char> text, bool parseSpecial)
    {
        var fragments = new List<(int Start, int Length, int Id, string? Normalized)>(4) { (0, text.Length, -1, null) };
        if (text.IsEmpty)
        {
            fragments.Clear();
            return fragments;
        }

        foreach (var id in _specialTokens)
        {
            if (!parseSpecial && Vocabulary.Kinds[id] is TokenKind.Control or TokenKind.Unknown)
            {
                continue;
            }

            var piece = Vocabulary.Pieces[id].AsSpan();
            for (var f = 0; f < fragments.Count; f++)
            {
                var (start, length, fragmentId, _) = fragments[f];
                if (fragmentId >= 0 || length < piece.Length)
                {
                    continue;
                }

                var at = text.Slice(start, length).IndexOf(piece, StringComparison.Ordinal);
                if (at < 0)
                {
                    continue;
                }

                // Replace the fragment by [left text] token [right text]; the right part is examined next (f + 1 or f + 2).
                fragments.RemoveAt(f);
                var insert = f;
                if (at > 0)
                {
                    fragments.Insert(insert++, (start, at, -1, null));
                }

                fragments.Insert(insert++, (start + at, piece.Length, id, null));
                var rightLength = length - at - piece.Length;
                if (rightLength > 0)
                {
                    fragments.Insert(insert, (start + at + piece.Length, rightLength, -1, null));
                }

                f = insert - 1;
            }
        }

        return fragments;
    }
}
