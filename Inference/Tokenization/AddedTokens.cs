using System.Globalization;
using System.Text;

namespace AspireAi.Inference.Tokenization;

/// <summary>How a <c>tokenizer.json</c> <c>added_tokens</c> entry is matched in text (Hugging Face's <c>AddedToken</c>).</summary>
/// <param name="LStrip">The token takes the whitespace on its left (it is not tokenized).</param>
/// <param name="RStrip">The token takes the whitespace on its right.</param>
/// <param name="SingleWord">The token matches only where no word character touches it on either side.</param>
/// <param name="Normalized">The token is matched in the normalized text (after pass one), not in the raw input.</param>
public readonly record struct AddedTokenOptions(bool LStrip = false, bool RStrip = false, bool SingleWord = false, bool Normalized = false);

/// <summary>
/// Cuts added tokens out of text as Hugging Face tokenizers' <c>AddedVocabulary</c> does: first the tokens with
/// <c>normalized: false</c> in the raw text, then, inside each remaining piece, those with <c>normalized: true</c>; each pass
/// takes the leftmost match, the longest at that position, then goes on after it. A <c>single_word</c> match touching a word
/// character is skipped; <c>lstrip</c>/<c>rstrip</c> widen a match over the whitespace beside it, which then belongs to the
/// token (never to the text around it).
/// </summary>
/// <remarks>
/// Differs from Hugging Face only where its output is ill-formed: after an <c>rstrip</c> match the search resumes after the
/// stripped whitespace (theirs resumes inside it, and can emit overlapping pieces for a token that starts with whitespace).
/// Written here rather than taken from Microsoft.ML.Tokenizers, which has no notion of these flags.
/// </remarks>
internal sealed class AddedTokens
{
    private readonly Vocabulary _vocabulary;
    private readonly IReadOnlyDictionary<int, AddedTokenOptions> _options;
    private readonly Dictionary<char, (int Id, string Content)[]> _raw;
    private readonly Dictionary<char, (int Id, string Content)[]> _normalized;
    private readonly bool _spacesNormalizedAway;
    private readonly NormalizationForm? _normalization;

    /// <param name="spacesNormalizedAway">The normalizer turns spaces into ▁ (Llama 2-style <c>tokenizer.json</c>), so in the
    /// second pass a space is no whitespace to strip.</param>
    /// <param name="normalization">The normalizer's Unicode normalization: the second pass runs on the normalized text, and
    /// matches each normalized token's normalized content.</param>
    public AddedTokens(Vocabulary vocabulary, IReadOnlyDictionary<int, AddedTokenOptions> options, bool spacesNormalizedAway, NormalizationForm? normalization)
    {
        _vocabulary = vocabulary;
        _options = options;
        _spacesNormalizedAway = spacesNormalizedAway;
        _normalization = normalization;
        _raw = Index(options.Where(o => !o.Value.Normalized).Select(o => (o.Key, vocabulary.Pieces[o.Key])));
        _normalized = Index(options.Where(o => o.Value.Normalized).Select(o => (o.Key, normalization is { } form ? vocabulary.Pieces[o.Key].Normalize(form) : vocabulary.Pieces[o.Key])));
    }

    /// <summary>Fragments covering <paramref name="text"/> in order: (start, length, -1) for text and (start, length, id) for
    /// a token, its span including any whitespace it stripped. Where the second pass had to normalize a piece, its fragments
    /// index <c>Normalized</c> (that piece's normalized text) instead of <paramref name="text"/>. <paramref name="parseSpecial"/>
    /// false: special (control) tokens are not matched, as Hugging Face's <c>encode_special_tokens</c>.</summary>
    public List<(int Start, int Length, int Id, string? Normalized)> Partition(ReadOnlySpan<char> text, bool parseSpecial)
    {
        var firstPass = new List<(int Start, int Length, int Id, string? Normalized)>(4);
        Split(text, 0, text.Length, _raw, parseSpecial, spaceIsWhitespace: true, null, firstPass);
        if (_normalized.Count == 0)
        {
            return firstPass;
        }

        var result = new List<(int Start, int Length, int Id, string? Normalized)>(firstPass.Count);
        foreach (var fragment in firstPass)
        {
            var piece = text.Slice(fragment.Start, fragment.Length);
            if (fragment.Id >= 0)
            {
                result.Add(fragment);
            }
            else if (_normalization is { } form && !piece.IsNormalized(form))
            {
                var normalized = piece.ToString().Normalize(form);
                Split(normalized, 0, normalized.Length, _normalized, parseSpecial, !_spacesNormalizedAway, normalized, result);
            }
            else
            {
                Split(text, fragment.Start, fragment.Start + fragment.Length, _normalized, parseSpecial, !_spacesNormalizedAway, null, result);
            }
        }

        return result;
    }

    private static Dictionary<char, (int Id, string Content)[]> Index(IEnumerable<(int Id, string Content)> tokens) => tokens
        .Where(t => t.Content.Length > 0)
        .GroupBy(t => t.Content[0])
        .ToDictionary(g => g.Key, g => g.OrderByDescending(t => t.Content.Length).ThenBy(t => t.Id).ToArray());

    private void Split(ReadOnlySpan<char> text, int begin, int end, Dictionary<char, (int Id, string Content)[]> tokens, bool parseSpecial, bool spaceIsWhitespace, string? normalized, List<(int, int, int, string?)> output)
    {
        var textStart = begin;
        for (var pos = begin; pos < end;)
        {
            var (id, length) = tokens.Count == 0 ? (-1, 0) : LongestAt(text[..end], pos, tokens, parseSpecial);
            if (id < 0)
            {
                pos++;
                continue;
            }

            var options = _options[id];
            var start = pos;
            var stop = pos + length;
            if (options.SingleWord && ((start > begin && IsWordChar(text[begin..start], fromEnd: true)) || (stop < end && IsWordChar(text[stop..end], fromEnd: false))))
            {
                pos = stop;
                continue;
            }

            if (options.LStrip)
            {
                while (start > textStart && IsWhitespace(text[textStart..start], fromEnd: true, spaceIsWhitespace, out var width))
                {
                    start -= width;
                }
            }

            if (options.RStrip)
            {
                while (stop < end && IsWhitespace(text[stop..end], fromEnd: false, spaceIsWhitespace, out var width))
                {
                    stop += width;
                }
            }

            if (start > textStart)
            {
                output.Add((textStart, start - textStart, -1, normalized));
            }

            output.Add((start, stop - start, id, normalized));
            textStart = pos = stop;
        }

        if (end > textStart)
        {
            output.Add((textStart, end - textStart, -1, normalized));
        }
    }

    private (int Id, int Length) LongestAt(ReadOnlySpan<char> text, int pos, Dictionary<char, (int Id, string Content)[]> tokens, bool parseSpecial)
    {
        if (!tokens.TryGetValue(text[pos], out var candidates))
        {
            return (-1, 0);
        }

        foreach (var (id, content) in candidates)
        {
            if ((parseSpecial || _vocabulary.Kinds[id] is not (TokenKind.Control or TokenKind.Unknown)) &&
                text[pos..].StartsWith(content, StringComparison.Ordinal))
            {
                return (id, content.Length);
            }
        }

        return (-1, 0);
    }

    /// <summary>Rust regex's Unicode <c>\w</c>: letters, marks, decimal and letter numbers, connector punctuation, joiners.</summary>
    private static bool IsWordChar(ReadOnlySpan<char> text, bool fromEnd)
    {
        var rune = Edge(text, fromEnd, out _);
        return rune.Value is 0x200C or 0x200D || Rune.GetUnicodeCategory(rune) is
            UnicodeCategory.UppercaseLetter or UnicodeCategory.LowercaseLetter or UnicodeCategory.TitlecaseLetter or
            UnicodeCategory.ModifierLetter or UnicodeCategory.OtherLetter or UnicodeCategory.NonSpacingMark or
            UnicodeCategory.SpacingCombiningMark or UnicodeCategory.EnclosingMark or UnicodeCategory.DecimalDigitNumber or
            UnicodeCategory.LetterNumber or UnicodeCategory.ConnectorPunctuation;
    }

    private static bool IsWhitespace(ReadOnlySpan<char> text, bool fromEnd, bool spaceIsWhitespace, out int width)
    {
        var rune = Edge(text, fromEnd, out width);
        return Rune.IsWhiteSpace(rune) && (spaceIsWhitespace || rune.Value != ' ');
    }

    private static Rune Edge(ReadOnlySpan<char> text, bool fromEnd, out int width)
    {
        var status = fromEnd ? Rune.DecodeLastFromUtf16(text, out var rune, out width) : Rune.DecodeFromUtf16(text, out rune, out width);
        return status == System.Buffers.OperationStatus.Done ? rune : Rune.ReplacementChar;
    }
}
