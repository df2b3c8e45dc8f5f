using System.Globalization;
using System.Text;

namespace AspireAi.Inference.Tokenization;

/// <summary>The pre-tokenizer regexes of byte-level BPE vocabularies (GGUF <c>tokenizer.ggml.pre</c>).</summary>
public enum BpePreTokenizerKind
{
    /// <summary>GPT-2: <c>'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+</c>.</summary>
    Gpt2,

    /// <summary>GPT-2's regex after splitting every digit on its own (StarCoder, SmolLM, Refact).</summary>
    Gpt2SingleDigits,

    /// <summary>Llama 3: <c>(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+</c>.</summary>
    Llama3,

    /// <summary>Qwen2: Llama 3's regex with single digits (<c>\p{N}</c> instead of <c>\p{N}{1,3}</c>).</summary>
    Qwen2,
}

/// <summary>
/// Splits text into the words that BPE then merges within, with the same results as llama.cpp's hand-written matchers
/// (<c>unicode_regex_split_custom_gpt2</c>/<c>_llama3</c>/<c>_qwen2</c>) for those regexes. Written as code over code points
/// rather than with <see cref="System.Text.RegularExpressions.Regex"/> because .NET regexes run on UTF-16: <c>\p{L}</c> does
/// not match letters outside the BMP, which would split such words differently from the reference.
/// </summary>
internal static class BpePreTokenizer
{
    private const int OutOfRange = -1;

    /// <summary>Appends each word's (start, length), in chars of <paramref name="text"/>, to <paramref name="words"/>.</summary>
    public static void Split(ReadOnlySpan<char> text, BpePreTokenizerKind kind, List<(int Start, int Length)> words)
    {
        if (kind == BpePreTokenizerKind.Gpt2SingleDigits)
        {
            // First regex \p{N}: each number code point alone; the text between goes through GPT-2's regex.
            var start = 0;
            for (var i = 0; i < text.Length;)
            {
                Rune.DecodeFromUtf16(text[i..], out var rune, out var n);
                if (IsNumber(rune.Value))
                {
                    SplitFragment(text, start, i, BpePreTokenizerKind.Gpt2, words);
                    words.Add((i, n));
                    start = i + n;
                }

                i += n;
            }

            SplitFragment(text, start, text.Length, BpePreTokenizerKind.Gpt2, words);
            return;
        }

        SplitFragment(text, 0, text.Length, kind, words);
    }

    private static void SplitFragment(ReadOnlySpan<char> text, int begin, int end, BpePreTokenizerKind kind, List<(int, int)> words)
    {
        if (begin >= end)
        {
            return;
        }

        // Code points of the fragment and where each starts in the text.
        var count = 0;
        Span<int> cpts = end - begin <= 512 ? stackalloc int[end - begin + 1] : new int[end - begin + 1];
        Span<int> offs = end - begin <= 512 ? stackalloc int[end - begin + 1] : new int[end - begin + 1];
        for (var i = begin; i < end;)
        {
            Rune.DecodeFromUtf16(text[i..end], out var rune, out var used);
            cpts[count] = rune.Value;
            offs[count++] = i;
            i += used;
        }

        offs[count] = end;
        var matcher = new Matcher(cpts[..count], offs, words);
        if (kind == BpePreTokenizerKind.Gpt2)
        {
            matcher.Gpt2();
        }
        else
        {
            matcher.Llama3(maxDigits: kind == BpePreTokenizerKind.Llama3 ? 3 : 1);
        }
    }

    private static bool IsLetter(int cpt) => cpt >= 0 && Rune.GetUnicodeCategory(new Rune(cpt)) is
        UnicodeCategory.UppercaseLetter or UnicodeCategory.LowercaseLetter or UnicodeCategory.TitlecaseLetter or
        UnicodeCategory.ModifierLetter or UnicodeCategory.OtherLetter;

    private static bool IsNumber(int cpt) => cpt >= 0 && Rune.GetUnicodeCategory(new Rune(cpt)) is
        UnicodeCategory.DecimalDigitNumber or UnicodeCategory.LetterNumber or UnicodeCategory.OtherNumber;

    // llama.cpp's whitespace set (unicode_set_whitespace) is exactly .NET's Rune.IsWhiteSpace.
    private static bool IsWhitespace(int cpt) => cpt >= 0 && Rune.IsWhiteSpace(new Rune(cpt));

    private static int ToLowerAscii(int cpt) => cpt is >= 'A' and <= 'Z' ? cpt + 32 : cpt;

    private ref struct Matcher(ReadOnlySpan<int> cpts, ReadOnlySpan<int> offsets, List<(int, int)> words)
    {
        private readonly ReadOnlySpan<int> _cpts = cpts;
        private readonly ReadOnlySpan<int> _offsets = offsets;
        private int _previousEnd;

        private readonly int Cpt(int pos) => pos < _cpts.Length ? _cpts[pos] : OutOfRange;

        private readonly bool InRange(int pos) => pos < _cpts.Length;

        private readonly bool Letter(int pos) => IsLetter(Cpt(pos));

        private readonly bool Number(int pos) => IsNumber(Cpt(pos));

        private readonly bool Space(int pos) => IsWhitespace(Cpt(pos));

        private int Add(int end)
        {
            var length = end - _previousEnd;
            if (length > 0)
            {
                words.Add((_offsets[_previousEnd], _offsets[end] - _offsets[_previousEnd]));
            }

            _previousEnd = end;
            return length;
        }

        public void Gpt2()
        {
            var end = _cpts.Length;
            for (var pos = 0; pos < end;)
            {
                var cpt = Cpt(pos);
                // 's|'t|'re|'ve|'m|'ll|'d
                if (cpt == '\'' && pos + 1 < end)
                {
                    var next = Cpt(pos + 1);
                    if (next is 's' or 't' or 'm' or 'd')
                    {
                        pos += Add(pos + 2);
                        continue;
                    }

                    if (pos + 2 < end)
                    {
                        var nextNext = Cpt(pos + 2);
                        if ((next == 'r' && nextNext == 'e') || (next == 'v' && nextNext == 'e') || (next == 'l' && nextNext == 'l'))
                        {
                            pos += Add(pos + 3);
                            continue;
                        }
                    }
                }

                var probe = cpt == ' ' ? pos + 1 : pos;
                // ' ?\p{L}+', ' ?\p{N}+', ' ?[^\s\p{L}\p{N}]+'
                if (Letter(probe) || Number(probe) || (InRange(probe) && !Space(probe)))
                {
                    var letter = Letter(probe);
                    var number = Number(probe);
                    pos = probe;
                    while (InRange(pos) && (letter ? Letter(pos) : number ? Number(pos) : !(Space(pos) || Letter(pos) || Number(pos))))
                    {
                        pos++;
                    }

                    Add(pos);
                    continue;
                }

                pos = Whitespace(pos, end);
            }
        }

        public void Llama3(int maxDigits)
        {
            var end = _cpts.Length;
            for (var pos = 0; pos < end;)
            {
                var cpt = Cpt(pos);
                // (?i:'s|'t|'re|'ve|'m|'ll|'d)
                if (cpt == '\'' && pos + 1 < end)
                {
                    var next = ToLowerAscii(Cpt(pos + 1));
                    if (next is 's' or 't' or 'm' or 'd')
                    {
                        pos += Add(pos + 2);
                        continue;
                    }

                    if (pos + 2 < end)
                    {
                        var nextNext = ToLowerAscii(Cpt(pos + 2));
                        if ((next == 'r' && nextNext == 'e') || (next == 'v' && nextNext == 'e') || (next == 'l' && nextNext == 'l'))
                        {
                            pos += Add(pos + 3);
                            continue;
                        }
                    }
                }

                // [^\r\n\p{L}\p{N}]?\p{L}+
                if (!(cpt == '\r' || cpt == '\n' || Number(pos)) && (Letter(pos) || Letter(pos + 1)))
                {
                    pos++;
                    while (Letter(pos))
                    {
                        pos++;
                    }

                    Add(pos);
                    continue;
                }

                // \p{N}{1,maxDigits}
                if (Number(pos))
                {
                    var first = pos;
                    while (Number(pos))
                    {
                        if (++pos - first >= maxDigits)
                        {
                            Add(pos);
                            first = pos;
                        }
                    }

                    Add(pos);
                    continue;
                }

                // ' ?[^\s\p{L}\p{N}]+[\r\n]*'
                var probe = cpt == ' ' ? pos + 1 : pos;
                if (InRange(probe) && !(Space(probe) || Letter(probe) || Number(probe)))
                {
                    pos = probe;
                    while (InRange(pos) && !(Space(pos) || Letter(pos) || Number(pos)))
                    {
                        pos++;
                    }

                    while (Cpt(pos) is '\r' or '\n')
                    {
                        pos++;
                    }

                    Add(pos);
                    continue;
                }

                // \s*[\r\n]+
                var spaces = 0;
                var lastNewlineEnd = 0;
                while (Space(pos + spaces))
                {
                    if (Cpt(pos + spaces) is '\r' or '\n')
                    {
                        lastNewlineEnd = pos + spaces + 1;
                    }

                    spaces++;
                }

                if (lastNewlineEnd > 0)
                {
                    pos = lastNewlineEnd;
                    Add(pos);
                    continue;
                }

                pos = Whitespace(pos, end);
            }
        }

        /// <summary>'\s+(?!\S)|\s+' and, failing all, a single code point.</summary>
        private int Whitespace(int pos, int end)
        {
            var spaces = 0;
            while (Space(pos + spaces))
            {
                spaces++;
            }

            if (spaces > 1 && InRange(pos + spaces))
            {
                pos += spaces - 1;
                Add(pos);
                return pos;
            }

            if (spaces > 0)
            {
                pos += spaces;
                Add(pos);
                return pos;
            }

            Add(++pos);
            return pos;
        }
    }
}
