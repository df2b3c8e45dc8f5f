using System.Text;

namespace AspireAi.Inference.Tokenization;

/// <summary>
/// SentencePiece-style tokenization over a GGUF <c>llama</c> vocabulary (pieces with scores), as llama.cpp's
/// <c>llm_tokenizer_spm_session</c>: spaces become ▁ (with a leading ▁ at the start and after each special token), then the
/// adjacent pair whose concatenation is the highest-scoring piece is merged until none is left; characters that never formed
/// a piece fall back to their UTF-8 bytes as <c>&lt;0xNN&gt;</c> tokens.
/// </summary>
/// <remarks>
/// Written here rather than on Microsoft.ML.Tokenizers' <c>SentencePieceTokenizer</c>, which only loads a SentencePiece
/// protobuf model file: GGUF carries the pieces, scores and types as arrays, and a llama2.c vocabulary has no protobuf at all.
/// llama.cpp's <c>rev_merge</c> re-segmentation is not needed: a merge only ever forms a vocabulary piece, so the only
/// symbols that are not pieces are single characters, which go straight to byte fallback.
/// </remarks>
public sealed class SentencePieceTokenizer : TokenizerBase
{
    private const char Escape = '\u2581'; // ▁

    [ThreadStatic]
    private static Session? t_session;

    public SentencePieceTokenizer(Vocabulary vocabulary, bool addBos = true, bool addEos = false, bool addSpacePrefix = true)
        : base(vocabulary, addBos, addEos)
    {
        AddSpacePrefix = addSpacePrefix;
    }

    public bool AddSpacePrefix { get; }

    protected override void EncodeText(ReadOnlySpan<char> text, bool afterSpecial, List<int> output)
    {
        var session = t_session ??= new Session();
        session.Run(Vocabulary, text, AddSpacePrefix && afterSpecial, output);
    }

    protected override byte[] PieceToBytes(string piece) => Encoding.UTF8.GetBytes(piece.Replace(Escape, ' '));

    /// <summary>Per-thread scratch space, so tokenizing allocates nothing but the output.</summary>
    private sealed class Session
    {
        private char[] _text = new char[256];
        private Symbol[] _symbols = new Symbol[256];
        private readonly PriorityQueue<Bigram, (float NegScore, int Left)> _queue = new();

        public void Run(Vocabulary vocabulary, ReadOnlySpan<char> input, bool prefixSpace, List<int> output)
        {
            var length = input.Length + (prefixSpace ? 1 : 0);
            if (_text.Length < length)
            {
                _text = new char[Math.Max(length, _text.Length * 2)];
                _symbols = new Symbol[_text.Length];
            }

            var text = _text.AsSpan(0, length);
            if (prefixSpace)
            {
                text[0] = Escape;
            }

            input.CopyTo(text[(prefixSpace ? 1 : 0)..]);
            text.Replace(' ', Escape);

            // One symbol per character (a surrogate pair is one character).
            var count = 0;
            for (var i = 0; i < length;)
            {
                var n = char.IsHighSurrogate(text[i]) && i + 1 < length && char.IsLowSurrogate(text[i + 1]) ? 2 : 1;
                _symbols[count] = new Symbol(i, n, count - 1, i + n == length ? -1 : count + 1);
                count++;
                i += n;
            }

            _queue.Clear();
            for (var i = 1; i < count; i++)
            {
                TryAddBigram(vocabulary, text, i - 1, i);
            }

            while (_queue.TryDequeue(out var bigram, out _))
            {
                ref var left = ref _symbols[bigram.Left];
                ref var right = ref _symbols[bigram.Right];
                // Stale: one side has merged since this pair was queued.
                if (left.Length == 0 || right.Length == 0 || left.Length + right.Length != bigram.Length)
                {
                    continue;
                }

                left.Length += right.Length;
                right.Length = 0;
                left.Next = right.Next;
                if (right.Next >= 0)
                {
                    _symbols[right.Next].Prev = bigram.Left;
                }

                TryAddBigram(vocabulary, text, left.Prev, bigram.Left);
                TryAddBigram(vocabulary, text, bigram.Left, left.Next);
            }

            Span<byte> utf8 = stackalloc byte[8];
            for (var i = 0; i != -1 && count > 0; i = _symbols[i].Next)
            {
                var symbol = _symbols[i];
                var piece = text.Slice(symbol.Start, symbol.Length);
                var id = vocabulary.IdOf(piece);
                if (id >= 0)
                {
                    output.Add(id);
                    continue;
                }

                // Byte fallback: the character's UTF-8 bytes (unknown bytes map to -1 only in a vocabulary without them).
                var written = Encoding.UTF8.GetBytes(piece, utf8);
                foreach (var b in utf8[..written])
                {
                    var byteId = vocabulary.ByteToken(b);
                    output.Add(byteId >= 0 ? byteId : Math.Max(vocabulary.UnknownId, 0));
                }
            }
        }

        private void TryAddBigram(Vocabulary vocabulary, ReadOnlySpan<char> text, int left, int right)
        {
            if (left == -1 || right == -1)
            {
                return;
            }

            var length = _symbols[left].Length + _symbols[right].Length;
            var id = vocabulary.IdOf(text.Slice(_symbols[left].Start, length));
            if (id < 0)
            {
                return;
            }

            // Highest score first; on equal scores the leftmost pair (llama.cpp's comparator).
            _queue.Enqueue(new Bigram(left, right, length), (-vocabulary.Scores[id], left));
        }
    }

    private record struct Symbol(int Start, int Length, int Prev, int Next);

    private readonly record struct Bigram(int Left, int Right, int Length);
}
