using System.Text.Json;
using AspireAi.Inference.Tests.Support;
using AspireAi.Inference.Tokenization;

namespace AspireAi.Inference.Tests.Tokenization;

/// <summary>
/// <c>added_tokens</c> flags of a <c>tokenizer.json</c> (<c>lstrip</c>, <c>rstrip</c>, <c>single_word</c>, <c>normalized</c>,
/// <c>special</c>), with the expectations of Hugging Face tokenizers' <c>AddedVocabulary</c>: leftmost-longest matching,
/// non-normalized tokens on the raw text first, normalized ones on the normalized pieces, Rust regex <c>\s</c>/<c>\w</c> for
/// stripping and word boundaries.
/// </summary>
/// <remarks>
/// The vocabulary is GPT-2's 256 byte characters with no merges, each byte's id equal to its value, so plain text encodes to
/// its UTF-8 bytes and every expectation below can be read off the string.
/// </remarks>
public sealed class AddedTokenOptionsTests : IDisposable
{
    private const int LStrip = 256, RStrip = 257, Both = 258, Plain = 259, PlainLonger = 260, Word = 261, Ab = 262, Bcd = 263, Cafe = 264, SpaceWord = 265;

    private readonly TempDirectory _temp = new();

    public void Dispose() => _temp.Dispose();

    [Theory]
    [InlineData("a  <L>b", new[] { 'a', LStrip, 'b' })]
    [InlineData("a\t\n <L>b", new[] { 'a', LStrip, 'b' })]
    [InlineData("<L> b", new[] { LStrip, ' ', 'b' })]
    [InlineData("a<R>  \n b", new[] { 'a', RStrip, 'b' })]
    [InlineData("a <R>", new[] { 'a', ' ', RStrip })]
    [InlineData("a \u00A0<B>\u3000 b", new[] { 'a', Both, 'b' })]
    [InlineData("a <T> b", new[] { 'a', ' ', Plain, ' ', 'b' })]
    [InlineData("<L><L>", new[] { LStrip, LStrip })]
    [InlineData("<R> <L>", new[] { RStrip, LStrip })]
    public void Lstrip_and_rstrip_take_the_whitespace_beside_the_token(string text, int[] expected) =>
        Assert.Equal(expected, Tokenizer().Encode(text, addSpecial: false));

    [Theory]
    [InlineData("a word here", true)]
    [InlineData("word", true)]
    [InlineData("(word).", true)]
    [InlineData("\nword\t", true)]
    [InlineData("swordfish", false)]
    [InlineData("words", false)]
    [InlineData("word_x", false)]
    [InlineData("2word", false)]
    [InlineData("wordé", false)]
    [InlineData("日word", false)]
    [InlineData("word\u0301", false)]
    public void Single_word_tokens_match_only_between_non_word_characters(string text, bool matches)
    {
        var ids = Tokenizer().Encode(text, addSpecial: false);
        Assert.Equal(matches, ids.Contains(Word));
        Assert.Equal(text, Tokenizer().Decode(ids, includeSpecial: true));
    }

    [Fact]
    public void The_leftmost_match_wins_then_the_longest()
    {
        // llama.cpp's order (each token in turn, longest first) would cut "bcd" first and leave "a"; Hugging Face takes the
        // leftmost match, "ab".
        Assert.Equal([Ab, 'c', 'd'], Tokenizer().Encode("abcd", addSpecial: false));
        Assert.Equal([PlainLonger, Plain], Tokenizer().Encode("<T>x<T>", addSpecial: false));
    }

    [Fact]
    public void Unparsed_special_tokens_are_text_but_other_added_tokens_still_match()
    {
        var ids = Tokenizer().Encode("<T> word", addSpecial: false, parseSpecial: false);
        Assert.Equal(['<', 'T', '>', ' ', Word], ids);
    }

    [Fact]
    public void Normalized_tokens_match_the_normalized_text()
    {
        // "café" is added with normalized: true under an NFC normalizer: the decomposed spelling matches it too, and the
        // text after it is encoded in its normalized (composed) form. The special, non-normalized <T> needs the exact bytes.
        var tokenizer = Tokenizer(normalizer: "NFC");
        Assert.Equal([Cafe, ' ', 0xC3, 0xA9], tokenizer.Encode("cafe\u0301 e\u0301", addSpecial: false));
        Assert.Equal([Cafe], tokenizer.Encode("café", addSpecial: false));
        Assert.Equal([Plain], tokenizer.Encode("<T>", addSpecial: false));
        // Without a normalizer the decomposed spelling is other bytes.
        Assert.DoesNotContain(Cafe, Tokenizer().Encode("cafe\u0301", addSpecial: false));
    }

    [Fact]
    public void A_normalized_token_holding_a_space_matches_as_written()
    {
        Assert.Equal(['x', SpaceWord, 'y'], Tokenizer().Encode("xhello worldy", addSpecial: false));
        Assert.Equal("xhello worldy", Tokenizer().Decode(['x', SpaceWord, 'y']));
    }

    [Fact]
    public void Special_tokens_are_skipped_when_decoding_and_added_ones_are_not()
    {
        var ids = Tokenizer().Encode("a <T> word", addSpecial: false);
        Assert.Equal("a  word", Tokenizer().Decode(ids));
        Assert.Equal("a <T> word", Tokenizer().Decode(ids, includeSpecial: true));
        // Stripped whitespace belongs to the token: it does not come back.
        Assert.Equal("a<L>b", Tokenizer().Decode(Tokenizer().Encode("a  <L>b", addSpecial: false), includeSpecial: true));
    }

    private ITokenizer Tokenizer(string? normalizer = null)
    {
        var byteChars = new char[256];
        var next = 256;
        for (var b = 0; b < 256; b++)
        {
            byteChars[b] = b is >= '!' and <= '~' or >= 0xA1 and <= 0xAC or >= 0xAE and <= 0xFF ? (char)b : (char)next++;
        }

        object Added(int id, string content, bool special, bool lstrip = false, bool rstrip = false, bool singleWord = false, bool? normalized = null) =>
            new { id, content, single_word = singleWord, lstrip, rstrip, normalized = normalized ?? !special, special };

        var json = new
        {
            version = "1.0",
            added_tokens = new[]
            {
                Added(LStrip, "<L>", special: true, lstrip: true),
                Added(RStrip, "<R>", special: true, rstrip: true),
                Added(Both, "<B>", special: true, lstrip: true, rstrip: true),
                Added(Plain, "<T>", special: true),
                Added(PlainLonger, "<T>x", special: true),
                Added(Word, "word", special: false, singleWord: true),
                Added(Ab, "ab", special: false),
                Added(Bcd, "bcd", special: false),
                Added(Cafe, "café", special: false),
                Added(SpaceWord, "hello world", special: false),
            },
            normalizer = normalizer is null ? null : new { type = normalizer },
            pre_tokenizer = new { type = "ByteLevel", add_prefix_space = false, trim_offsets = true, use_regex = true },
            decoder = new { type = "ByteLevel" },
            model = new
            {
                type = "BPE",
                vocab = Enumerable.Range(0, 256).ToDictionary(b => byteChars[b].ToString(), b => b),
                merges = Array.Empty<string>(),
            },
        };
        var folder = Directory.CreateDirectory(_temp.File(normalizer ?? "plain")).FullName;
        File.WriteAllText(Path.Combine(folder, "tokenizer.json"), JsonSerializer.Serialize(json));
        return Tokenizers.FromHuggingFace(folder);
    }
}
