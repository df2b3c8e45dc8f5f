using System.Text;

namespace AspireAi.Inference.Tokenization;

/// <summary>
/// BPE over merge ranks, as llama.cpp's <c>llm_tokenizer_bpe_session</c> and Hugging Face's BPE model: within each word the
/// adjacent pair with the lowest merge rank (leftmost on ties) is merged until no ranked pair is left.
/// Two flavours: byte-level (GGUF <c>gpt2</c>, GPT-2/Llama 3/Qwen: words from the pre-tokenizer regex, bytes mapped to
/// GPT-2's printable alphabet) and SentencePiece-style (Hugging Face <c>tokenizer.json</c> of Llama 2/Mistral/TinyLlama:
/// spaces as ▁, a leading ▁, characters outside the vocabulary as <c>&lt;0xNN&gt;</c> byte tokens).
/// </summary>
/// <remarks>
/// Merges are applied on token ids (a pair of ids → rank and merged id), so the inner loop allocates nothing. Not built on
/// Microsoft.ML.Tokenizers' <c>BpeTokenizer</c>: it has no byte fallback and no <c>ignore_merges</c> (Llama 3 takes a word that
/// is a whole vocabulary entry as is), its regex pre-tokenizers run on UTF-16 (see <see cref="BpePreTokenizer"/>), and it
/// allocates a list per word; the tests use it as an independent check of the byte-level merges instead.
/// </remarks>
public sealed class BytePairTokenizer : TokenizerBase
{
    private const char Escape = '\u2581'; // ▁

    [ThreadStatic]
    private static Session? t_session;

    private readonly Dictionary<long, (int Rank, int Merged)> _merges;
    private readonly int[] _byteLevelIds = new int[256];

    /// <param name="merges">Merge rules in rank order, each "left right" (as GGUF <c>tokenizer.ggml.merges</c> and merges.txt).</param>
    public BytePairTokenizer(Vocabulary vocabulary, IReadOnlyList<string> merges, BpeMode mode, bool addBos = false, bool addEos = false)
        : base(vocabulary, addBos, addEos, mode.SpacesReplacedByNormalizer, mode.Normalization)
    {
        Mode = mode;
        _merges = new Dictionary<long, (int, int)>(merges.Count);
        for (var rank = 0; rank < merges.Count; rank++)
        {
            var merge = merges[rank];
            // llama.cpp splits at the first space after the first character (a piece may itself be a space).
            var space = merge.IndexOf(' ', 1);
            if (space < 0)
            {
                continue;
            }

            var left = vocabulary.IdOf(merge.AsSpan(0, space));
            var right = vocabulary.IdOf(merge.AsSpan(space + 1));
            var merged = vocabulary.IdOf(string.Concat(merge.AsSpan(0, space), merge.AsSpan(space + 1)));
            // A rule whose parts or result are not vocabulary entries can never produce a token; first rank wins.
            if (left >= 0 && right >= 0 && merged >= 0)
            {
                _merges.TryAdd(Key(left, right), (rank, merged));
            }
        }

        for (var b = 0; b < 256; b++)
        {
            _byteLevelIds[b] = vocabulary.IdOf([ByteLevel.ByteToChar[b]]);
        }
    }

    public BpeMode Mode { get; }

    protected override void EncodeText(ReadOnlySpan<char> text, bool afterSpecial, List<int> output)
    {
        var session = t_session ??= new Session();
        if (Mode.SentencePieceStyle)
        {
            session.EncodeSentencePieceStyle(this, text, afterSpecial && Mode.AddSpacePrefix, output);
        }
        else if (Mode.Normalization is { } form && !text.IsNormalized(form))
        {
            session.EncodeByteLevel(this, text.ToString().Normalize(form), output);
        }
        else
        {
            session.EncodeByteLevel(this, text, output);
        }
    }

    protected override byte[] PieceToBytes(string piece) =>
        Mode.SentencePieceStyle ? Encoding.UTF8.GetBytes(piece.Replace(Escape, ' ')) : ByteLevel.Decode(piece);

    private static long Key(int left, int right) => ((long)left << 32) | (uint)right;

    private sealed class Session
    {
        private readonly List<(int Start, int Length)> _words = [];
        private readonly PriorityQueue<(int Left, int Right, int LeftId, int RightId, int Merged), (int Rank, int Left)> _queue = new();
        private Symbol[] _symbols = new Symbol[256];
        private char[] _chars = new char[256];
        private byte[] _bytes = new byte[1024];

        public void EncodeByteLevel(BytePairTokenizer tokenizer, ReadOnlySpan<char> text, List<int> output)
        {
            _words.Clear();
            BpePreTokenizer.Split(text, tokenizer.Mode.PreTokenizer, _words);
            foreach (var (start, length) in _words)
            {
                var word = text.Slice(start, length);
                var byteCount = Encoding.UTF8.GetMaxByteCount(word.Length);
                if (_bytes.Length < byteCount)
                {
                    _bytes = new byte[Math.Max(byteCount, _bytes.Length * 2)];
                }

                var bytes = _bytes.AsSpan(0, Encoding.UTF8.GetBytes(word, _bytes));
                Reserve(bytes.Length);
                for (var i = 0; i < bytes.Length; i++)
                {
                    _chars[i] = ByteLevel.ByteToChar[bytes[i]];
                }

                // ignore_merges (Llama 3): a word that is itself a vocabulary entry is that token.
                if (tokenizer.Mode.IgnoreMerges && tokenizer.Vocabulary.IdOf(_chars.AsSpan(0, bytes.Length)) is var whole and >= 0)
                {
                    output.Add(whole);
                    continue;
                }

                for (var i = 0; i < bytes.Length; i++)
                {
                    _symbols[i] = new Symbol(tokenizer._byteLevelIds[bytes[i]], i - 1, i + 1 == bytes.Length ? -1 : i + 1, i);
                }

                Merge(tokenizer, bytes.Length, output, byteFallback: false);
            }
        }

        public void EncodeSentencePieceStyle(BytePairTokenizer tokenizer, ReadOnlySpan<char> text, bool prefixSpace, List<int> output)
        {
            var length = text.Length + (prefixSpace ? 1 : 0);
            Reserve(length);
            var chars = _chars.AsSpan(0, length);
            if (prefixSpace)
            {
                chars[0] = Escape;
            }

            text.CopyTo(chars[(prefixSpace ? 1 : 0)..]);
            chars.Replace(' ', Escape);

            // One symbol per character: its vocabulary id, or -1 (later its UTF-8 bytes as <0xNN> tokens).
            var count = 0;
            for (var i = 0; i < length;)
            {
                var n = char.IsHighSurrogate(chars[i]) && i + 1 < length && char.IsLowSurrogate(chars[i + 1]) ? 2 : 1;
                _symbols[count] = new Symbol(tokenizer.Vocabulary.IdOf(chars.Slice(i, n)), count - 1, i + n == length ? -1 : count + 1, i, n);
                count++;
                i += n;
            }

            Merge(tokenizer, count, output, byteFallback: true);
        }

        private void Reserve(int length)
        {
            if (_chars.Length < length)
            {
                _chars = new char[Math.Max(length, _chars.Length * 2)];
                _symbols = new Symbol[_chars.Length];
            }
        }

        private void Merge(BytePairTokenizer tokenizer, int count, List<int> output, bool byteFallback)
        {
            if (count == 0)
            {
                return;
            }

            _queue.Clear();
            for (var i = 1; i < count; i++)
            {
                TryAdd(tokenizer, i - 1, i);
            }

            while (_queue.TryDequeue(out var pair, out _))
            {
                ref var left = ref _symbols[pair.Left];
                ref var right = ref _symbols[pair.Right];
                // Stale: either side merged since this pair was queued.
                if (left.Id != pair.LeftId || right.Id != pair.RightId || left.Next != pair.Right)
                {
                    continue;
                }

                left.Id = pair.Merged;
                left.Next = right.Next;
                left.Length += right.Length;
                right.Id = -2; // merged away
                if (right.Next >= 0)
                {
                    _symbols[right.Next].Prev = pair.Left;
                }

                TryAdd(tokenizer, left.Prev, pair.Left);
                TryAdd(tokenizer, pair.Left, left.Next);
            }

            Span<byte> utf8 = stackalloc byte[8];
            for (var i = 0; i != -1; i = _symbols[i].Next)
            {
                var symbol = _symbols[i];
                if (symbol.Id >= 0)
                {
                    output.Add(symbol.Id);
                }
                else if (byteFallback)
                {
                    var written = Encoding.UTF8.GetBytes(_chars.AsSpan(symbol.Start, symbol.Length), utf8);
                    foreach (var b in utf8[..written])
                    {
                        var id = tokenizer.Vocabulary.ByteToken(b);
                        output.Add(id >= 0 ? id : Math.Max(tokenizer.Vocabulary.UnknownId, 0));
                    }
                }
                else
                {
                    // A byte-level vocabulary lacking one of the 256 byte characters: nothing can stand for it.
                    output.Add(Math.Max(tokenizer.Vocabulary.UnknownId, 0));
                }
            }
        }

        private void TryAdd(BytePairTokenizer tokenizer, int left, int right)
        {
            if (left < 0 || right < 0 || _symbols[left].Id < 0 || _symbols[right].Id < 0)
            {
                return;
            }

            if (tokenizer._merges.TryGetValue(Key(_symbols[left].Id, _symbols[right].Id), out var merge))
            {
                _queue.Enqueue((left, right, _symbols[left].Id, _symbols[right].Id, merge.Merged), (merge.Rank, left));
            }
        }
    }

    /// <summary>A symbol of the word being merged: token id (-1: not in the vocabulary, -2: merged into its left neighbour)
    /// and its place in the character buffer (for byte fallback).</summary>
    private record struct Symbol(int Id, int Prev, int Next, int Start, int Length = 1);
}

/// <summary>Which BPE flavour a vocabulary uses.</summary>
/// <param name="SentencePieceStyle">Spaces as ▁ with byte fallback (Llama 2-style <c>tokenizer.json</c>), else byte-level.</param>
/// <param name="PreTokenizer">Byte-level only: how text is split into words.</param>
/// <param name="IgnoreMerges">Byte-level only: a word that is a vocabulary entry is taken whole (Llama 3).</param>
/// <param name="AddSpacePrefix">SentencePiece-style only: prefix ▁ at the start and after special tokens.</param>
/// <param name="Normalization">Byte-level only: the Unicode normalization applied to text before splitting (Qwen2: NFC).</param>
/// <param name="SpacesReplacedByNormalizer">SentencePiece-style only: spaces become ▁ in the normalizer (older Llama 2
/// <c>tokenizer.json</c>), before added tokens marked <c>normalized</c> are matched; newer files do it in the pre-tokenizer.</param>
public sealed record BpeMode(bool SentencePieceStyle, BpePreTokenizerKind PreTokenizer, bool IgnoreMerges, bool AddSpacePrefix, NormalizationForm? Normalization = null, bool SpacesReplacedByNormalizer = false)
{
    public static BpeMode ByteLevel(BpePreTokenizerKind preTokenizer, bool ignoreMerges = false, NormalizationForm? normalization = null) => new(false, preTokenizer, ignoreMerges, false, normalization);

    public static BpeMode SentencePiece(bool addSpacePrefix = true, bool spacesReplacedByNormalizer = false) =>
        new(true, BpePreTokenizerKind.Gpt2, false, addSpacePrefix, null, spacesReplacedByNormalizer);
}
