using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using AspireAi.Inference.Tests.Support;
using AspireAi.Inference.Tokenization;
using Microsoft.ML.Tokenizers;
using ITokenizer = AspireAi.Inference.Tokenization.ITokenizer;

namespace AspireAi.Inference.Tests.Tokenization;

/// <summary>
/// A real byte-level BPE vocabulary: OpenAI's cl100k_base (100,256 ranks; Llama 3's vocabulary is built on it), shipped by
/// the <c>Microsoft.ML.Tokenizers.Data.Cl100kBase</c> package. The tests write it as the <c>tokenizer.json</c> a Hugging Face
/// conversion produces (vocabulary through GPT-2's byte-to-unicode table, merges derived from the ranks, Llama 3's or
/// Qwen2's split regex), load that with our tokenizer, and require exactly the ids of Microsoft.ML.Tokenizers'
/// <see cref="TiktokenTokenizer"/> (an independent implementation over the raw ranks) and a byte-exact decode.
/// </summary>
/// <remarks>
/// The reference runs its regex with .NET's <see cref="Regex"/>, which works on UTF-16: a letter or digit outside the BMP
/// (𝐀, 𝟏) is not <c>\p{L}</c>/<c>\p{N}</c> there, and an emoji directly followed by a letter is split differently from the
/// Rust regex of Hugging Face and tiktoken (which sees code points). The corpus avoids those two cases; the pre-tokenizer
/// tests cover them against hand-checked splits instead.
/// </remarks>
public sealed class TiktokenVocabularyTests(TiktokenVocabularyTests.Cl100k data) : IClassFixture<TiktokenVocabularyTests.Cl100k>
{
    /// <summary>Llama 3's pre-tokenizer regex as written in its tokenizer.json (digits in groups of up to three).</summary>
    private const string Llama3Regex = @"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

    /// <summary>Qwen2's: the same with single digits.</summary>
    private const string Qwen2Regex = @"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

    public static TheoryData<string> Flavours => ["llama3", "qwen2"];

    [Theory]
    [MemberData(nameof(Flavours))]
    public void Ids_equal_tiktoken_and_decode_byte_exactly(string flavour)
    {
        var (ours, reference) = flavour == "llama3" ? (data.Llama3, data.Llama3Reference) : (data.Qwen2, data.Qwen2Reference);
        var failures = new List<string>();
        var corpus = Corpus().ToList();
        foreach (var text in corpus)
        {
            var expected = reference.EncodeToIds(text);
            var ids = ours.Encode(text, addSpecial: false);
            if (!ids.SequenceEqual(expected))
            {
                failures.Add($"{Show(text)}: expected [{string.Join(' ', expected.Take(40))}], got [{string.Join(' ', ids.Take(40))}]");
                continue;
            }

            // Qwen2 normalizes to NFC first, so its tokens spell the composed text.
            var spelled = flavour == "qwen2" ? text.Normalize(NormalizationForm.FormC) : text;
            var bytes = ids.SelectMany(id => ours.TokenBytes(id, includeSpecial: true).ToArray()).ToArray();
            if (!bytes.AsSpan().SequenceEqual(Encoding.UTF8.GetBytes(spelled)) || ours.Decode(ids, includeSpecial: true) != spelled)
            {
                failures.Add($"{Show(text)}: decoded as {Show(ours.Decode(ids, includeSpecial: true))}");
            }
        }

        Assert.True(corpus.Count > 300);
        Assert.True(failures.Count == 0, $"{failures.Count} of {corpus.Count} texts differ:\n" + string.Join('\n', failures.Take(20)));
    }

    [Fact]
    public void Llama3_groups_digits_by_three_and_qwen2_splits_every_digit()
    {
        // Numbers: the one place where the two regexes differ; ids of the digit groups as cl100k ranks them.
        int Rank(string s) => data.Ranks[Encoding.UTF8.GetBytes(s)];
        Assert.Equal([Rank("123"), Rank("456"), Rank("7")], data.Llama3.Encode("1234567", addSpecial: false));
        Assert.Equal([.. "1234567".Select(c => Rank(c.ToString()))], data.Qwen2.Encode("1234567", addSpecial: false));
    }

    [Fact]
    public void Special_tokens_are_single_ids_and_skipped_when_decoding_without_them()
    {
        var ours = data.Llama3;
        const string text = "Hello<|endoftext|> world<|fim_prefix|>def<|fim_suffix|>";
        var ids = ours.Encode(text, addSpecial: false);
        Assert.Equal(data.Llama3Reference.EncodeToIds(text), ids);
        Assert.Equal(3, ids.Count(id => id is 100257 or 100258 or 100260));
        Assert.Equal("Hello worlddef", ours.Decode(ids));
        Assert.Equal(text, ours.Decode(ids, includeSpecial: true));
        // Not parsed: the same characters are ordinary text.
        var literal = ours.Encode("<|endoftext|>", addSpecial: false, parseSpecial: false);
        Assert.DoesNotContain(100257, literal);
        Assert.Equal("<|endoftext|>", ours.Decode(literal));
    }

    [Fact]
    public void Llama3_tokenizer_json_gives_the_ids_of_stock_cl100k()
    {
        // Microsoft.ML.Tokenizers' own cl100k (tiktoken's current regex, which adds "\s+$" and "\s*[\r\n]" to Llama 3's
        // alternatives) agrees with the Llama 3 regex on the whole corpus, trailing whitespace after newlines included.
        var stock = TiktokenTokenizer.CreateForModel("gpt-4");
        string[] trailing = ["x\n ", "x\n  ", "x\n    ", "x\n\t", "x\n\n  ", "}\n    ", "x \n  ", "x\r\n\t\t"];
        foreach (var text in Corpus().Concat(trailing))
        {
            Assert.Equal(stock.EncodeToIds(text), data.Llama3.Encode(text, addSpecial: false));
        }
    }

    private static string Show(string text) => text.Length > 60 ? JsonSerializer.Serialize(text[..60]) + $"…({text.Length})" : JsonSerializer.Serialize(text);

    private static IEnumerable<string> Corpus()
    {
        string[] fixedTexts =
        [
            "",
            "Hello, world! This is a test of the tokenizer.",
            "The quick brown fox jumps over the lazy dog. THE QUICK BROWN FOX!",
            "I'm sure they'll say we've done it, isn't it? You'RE RIGHT, I'D say. 'tis the season's end.",
            "def foo(x):\n\tif x  >  1:\n\t\treturn    x * 2\n    else:\r\n        return None\n\n\nclass A:\n    pass\n",
            "for (int i = 0; i < n; ++i) {\n    sum += a[i] * b[i];   // dot\n}\n\t\t\n",
            "    indented\n        more\n\t\tmixed \t tabs\t\n",
            "1 12 123 1234 12345 123456 1234567890 3.14159 -42 1,000,000 0x1F 2024-06-01 10:30:00 1e-9",
            "٣٤٥ ①②③ ½ ²³ Ⅻ ¼",
            "日本語のテキストと中文文本，还有한국어 문장도 있습니다。東京タワー",
            "I love 🦙 and 🤖! 👨‍👩‍👧‍👦 family, 🇫🇷 flag ✨ sparkles 🎉🎉🎉 done.",
            "Ça va très bien, naïve café, Größe, São Paulo, Ångström, ñandú, Ærø, Œuvre, ǅ",
            "e\u0301 a\u0300 (decomposed) vs é à (composed)",
            "Привет, как дела? Всё хорошо. Ελληνικά γράμματα. مرحبا بالعالم. नमस्ते दुनिया. שלום עולם.",
            "   leading spaces", "trailing spaces   ", "a\n\nb", " \n \n", "\r\n\r\n", "\t\t\t", "x \n  y", "\n", " ", "  ",
            "<html><body class=\"main\">&nbsp;&amp;</body></html>",
            "{\"key\": [1, 2, 3], \"nested\": {\"a\": null, \"b\": true}}",
            "https://example.com/path?query=1&x=y#frag user@example.org",
            "!!!???...---___***+++===",
            "supercalifragilisticexpialidocious antidisestablishmentarianism pneumonoultramicroscopicsilicovolcanoconiosis",
            new string('a', 5000),
            string.Concat(Enumerable.Repeat("supercalifragilisticexpialidocious", 60)),
            new string(' ', 1000) + "x",
            new string('7', 1001),
            string.Concat(Enumerable.Repeat("ab1 ", 500)),
            string.Concat(Enumerable.Repeat("日本", 400)),
            string.Concat(Enumerable.Repeat("🦙 ", 300)),
            "Hello<|endoftext|>world <|fim_prefix|> x<|fim_middle|>y<|fim_suffix|>\n<|endofprompt|>",
        ];
        foreach (var text in fixedTexts)
        {
            yield return text;
        }

        // Seeded random mixtures of the classes the regex distinguishes.
        string[] pool =
        [
            "a", "Z", "é", "ß", "ж", "λ", "日", "本", "한", "ا", "क", "ि", "0", "7", "٣", "½", " ", " ", "  ", "\t", "\n", "\r\n", "\u00A0",
            "\u3000", "'", "'s", "'LL", "\"", ".", ",", "!", "?", "-", "_", "(", ")", "{", "}", "<", "/", "\\", "$", "€", "™", "🦙 ", "😀.",
            "👍 ", "\u200D", "Hello", "world", "token", "ization", "the", "The", " of", "ing", "2024", "x86_64",
        ];
        var random = new Random(1234);
        for (var i = 0; i < 400; i++)
        {
            var length = random.Next(1, 40);
            var builder = new StringBuilder();
            for (var j = 0; j < length; j++)
            {
                builder.Append(pool[random.Next(pool.Length)]);
            }

            yield return builder.ToString();
        }
    }

    /// <summary>cl100k's ranks, the tokenizer.json folders built from them, our tokenizers and the references: built once
    /// for the class (about a second: 100k merges derived, two JSON files written and read).</summary>
    public sealed class Cl100k : IDisposable
    {
        private static readonly Dictionary<string, int> SpecialTokens = new()
        {
            ["<|endoftext|>"] = 100257,
            ["<|fim_prefix|>"] = 100258,
            ["<|fim_middle|>"] = 100259,
            ["<|fim_suffix|>"] = 100260,
            ["<|endofprompt|>"] = 100276,
        };

        private readonly TempDirectory _temp = new();

        public Cl100k()
        {
            Ranks = ReadTiktokenFile();

            Assert.Equal(100256, Ranks.Count);
            var merges = DeriveMerges(Ranks);
            Assert.Equal(100256 - 256, merges.Count);

            Llama3 = Tokenizers.FromHuggingFace(WriteFolder("llama3", Llama3Regex, normalizer: null, ignoreMerges: true, merges, mergesAsArrays: true));
            Qwen2 = Tokenizers.FromHuggingFace(WriteFolder("qwen2", Qwen2Regex, normalizer: "NFC", ignoreMerges: false, merges, mergesAsArrays: false));
            Llama3Reference = Reference(Llama3Regex, normalizer: null);
            Qwen2Reference = Reference(Qwen2Regex, new NfcNormalizer());
        }

        public Dictionary<byte[], int> Ranks { get; }

        public ITokenizer Llama3 { get; }

        public ITokenizer Qwen2 { get; }

        public TiktokenTokenizer Llama3Reference { get; }

        public TiktokenTokenizer Qwen2Reference { get; }

        public void Dispose() => _temp.Dispose();

        /// <summary>The ranks as the data package ships them: cl100k_base.tiktoken, deflated.</summary>
        private static Dictionary<byte[], int> ReadTiktokenFile()
        {
            var assembly = System.Reflection.Assembly.Load("Microsoft.ML.Tokenizers.Data.Cl100kBase");
            using var resource = assembly.GetManifestResourceStream("cl100k_base.tiktoken.deflate")
                ?? throw new InvalidOperationException("cl100k_base.tiktoken.deflate is not in the data package");
            using var reader = new StreamReader(new System.IO.Compression.DeflateStream(resource, System.IO.Compression.CompressionMode.Decompress));
            var ranks = new Dictionary<byte[], int>(ByteArrayComparer.Instance);
            // A "Capacity: N" header, then lines of "base64-token rank", or (as this package ships them) the token alone, ranked in order.
            while (reader.ReadLine() is { Length: > 0 } line)
            {
                if (line.StartsWith("Capacity:", StringComparison.Ordinal))
                {
                    continue;
                }

                var space = line.IndexOf(' ');
                ranks.Add(
                    Convert.FromBase64String(space < 0 ? line : line[..space]),
                    space < 0 ? ranks.Count : int.Parse(line[(space + 1)..], System.Globalization.CultureInfo.InvariantCulture));
            }

            return ranks;
        }

        /// <summary>
        /// The merge list a tiktoken → Hugging Face conversion writes (as transformers' converter does): each multi-byte
        /// token, in rank order, is the merge of the two parts that BPE over the lower ranks leaves it in.
        /// </summary>
        private static List<(byte[] Left, byte[] Right)> DeriveMerges(Dictionary<byte[], int> ranks)
        {
            var lookup = ranks.GetAlternateLookup<ReadOnlySpan<byte>>();
            var merges = new List<(int Rank, byte[] Left, byte[] Right)>(ranks.Count);
            var parts = new List<(int Start, int Length)>();
            foreach (var (token, rank) in ranks)
            {
                if (token.Length < 2)
                {
                    continue;
                }

                parts.Clear();
                for (var i = 0; i < token.Length; i++)
                {
                    parts.Add((i, 1));
                }

                while (true)
                {
                    var best = -1;
                    var bestRank = rank;
                    for (var i = 0; i + 1 < parts.Count; i++)
                    {
                        var pair = token.AsSpan(parts[i].Start, parts[i].Length + parts[i + 1].Length);
                        if (lookup.TryGetValue(pair, out var r) && r < bestRank)
                        {
                            (best, bestRank) = (i, r);
                        }
                    }

                    if (best < 0)
                    {
                        break;
                    }

                    parts[best] = (parts[best].Start, parts[best].Length + parts[best + 1].Length);
                    parts.RemoveAt(best + 1);
                }

                Assert.True(parts.Count == 2, $"token {rank} does not reduce to one merge of lower ranks");
                merges.Add((rank, token[..parts[0].Length], token[parts[0].Length..]));
            }

            return merges.OrderBy(m => m.Rank).Select(m => (m.Left, m.Right)).ToList();
        }

        private string WriteFolder(string name, string regex, string? normalizer, bool ignoreMerges, List<(byte[] Left, byte[] Right)> merges, bool mergesAsArrays)
        {
            var folder = Directory.CreateDirectory(_temp.File(name)).FullName;
            using (var stream = File.Create(Path.Combine(folder, "tokenizer.json")))
            using (var json = new Utf8JsonWriter(stream))
            {
                json.WriteStartObject();
                json.WriteString("version", "1.0");
                json.WriteStartArray("added_tokens");
                foreach (var (content, id) in SpecialTokens)
                {
                    json.WriteStartObject();
                    json.WriteNumber("id", id);
                    json.WriteString("content", content);
                    json.WriteBoolean("single_word", false);
                    json.WriteBoolean("lstrip", false);
                    json.WriteBoolean("rstrip", false);
                    json.WriteBoolean("normalized", false);
                    json.WriteBoolean("special", true);
                    json.WriteEndObject();
                }

                json.WriteEndArray();
                if (normalizer is null)
                {
                    json.WriteNull("normalizer");
                }
                else
                {
                    json.WriteStartObject("normalizer");
                    json.WriteString("type", normalizer);
                    json.WriteEndObject();
                }

                json.WriteStartObject("pre_tokenizer");
                json.WriteString("type", "Sequence");
                json.WriteStartArray("pretokenizers");
                json.WriteStartObject();
                json.WriteString("type", "Split");
                json.WriteStartObject("pattern");
                json.WriteString("Regex", regex);
                json.WriteEndObject();
                json.WriteString("behavior", "Isolated");
                json.WriteBoolean("invert", false);
                json.WriteEndObject();
                json.WriteStartObject();
                json.WriteString("type", "ByteLevel");
                json.WriteBoolean("add_prefix_space", false);
                json.WriteBoolean("trim_offsets", true);
                json.WriteBoolean("use_regex", false);
                json.WriteEndObject();
                json.WriteEndArray();
                json.WriteEndObject();
                json.WriteStartObject("decoder");
                json.WriteString("type", "ByteLevel");
                json.WriteEndObject();
                json.WriteStartObject("model");
                json.WriteString("type", "BPE");
                json.WriteNull("dropout");
                json.WriteNull("unk_token");
                json.WriteBoolean("byte_fallback", false);
                json.WriteBoolean("ignore_merges", ignoreMerges);
                json.WriteStartObject("vocab");
                foreach (var (bytes, rank) in Ranks.OrderBy(r => r.Value))
                {
                    json.WriteNumber(GptBytesToUnicode(bytes), rank);
                }

                json.WriteEndObject();
                json.WriteStartArray("merges");
                foreach (var (left, right) in merges)
                {
                    if (mergesAsArrays)
                    {
                        json.WriteStartArray();
                        json.WriteStringValue(GptBytesToUnicode(left));
                        json.WriteStringValue(GptBytesToUnicode(right));
                        json.WriteEndArray();
                    }
                    else
                    {
                        json.WriteStringValue(GptBytesToUnicode(left) + " " + GptBytesToUnicode(right));
                    }
                }

                json.WriteEndArray();
                json.WriteEndObject();
                json.WriteEndObject();
            }

            File.WriteAllText(Path.Combine(folder, "tokenizer_config.json"), """{"eos_token":"<|endoftext|>","add_bos_token":false}""");
            return folder;
        }

        /// <summary>tiktoken over the same ranks with the given split regex and the same special tokens.</summary>
        private TiktokenTokenizer Reference(string regex, Normalizer? normalizer)
        {
            var file = new StringBuilder();
            foreach (var (bytes, rank) in Ranks)
            {
                file.Append(Convert.ToBase64String(bytes)).Append(' ').Append(rank).Append('\n');
            }

            using var stream = new MemoryStream(Encoding.UTF8.GetBytes(file.ToString()));
            var preTokenizer = new RegexPreTokenizer(new Regex(regex, RegexOptions.Compiled), SpecialTokens);
            return TiktokenTokenizer.Create(stream, preTokenizer, normalizer, SpecialTokens);
        }

        /// <summary>GPT-2's <c>bytes_to_unicode</c>, written out here independently of the engine's table.</summary>
        private static string GptBytesToUnicode(byte[] bytes)
        {
            var chars = new char[bytes.Length];
            for (var i = 0; i < bytes.Length; i++)
            {
                chars[i] = ByteChars[bytes[i]];
            }

            return new string(chars);
        }

        private static readonly char[] ByteChars = BuildByteChars();

        private static char[] BuildByteChars()
        {
            var printable = Enumerable.Range('!', '~' - '!' + 1).Concat(Enumerable.Range(0xA1, 0xAC - 0xA1 + 1)).Concat(Enumerable.Range(0xAE, 0xFF - 0xAE + 1)).ToHashSet();
            var map = new char[256];
            var n = 0;
            for (var b = 0; b < 256; b++)
            {
                map[b] = printable.Contains(b) ? (char)b : (char)(256 + n++);
            }

            return map;
        }
    }

    private sealed class NfcNormalizer : Normalizer
    {
        public override string Normalize(string original) => original.Normalize(NormalizationForm.FormC);

        public override string Normalize(ReadOnlySpan<char> original) => original.ToString().Normalize(NormalizationForm.FormC);
    }

    private sealed class ByteArrayComparer : IEqualityComparer<byte[]>, IAlternateEqualityComparer<ReadOnlySpan<byte>, byte[]>
    {
        public static readonly ByteArrayComparer Instance = new();

        public bool Equals(byte[]? x, byte[]? y) => x.AsSpan().SequenceEqual(y);

        public int GetHashCode(byte[] obj) => GetHashCode(obj.AsSpan());

        public bool Equals(ReadOnlySpan<byte> alternate, byte[] other) => alternate.SequenceEqual(other);

        public int GetHashCode(ReadOnlySpan<byte> alternate)
        {
            var hash = new HashCode();
            hash.AddBytes(alternate);
            return hash.ToHashCode();
        }

        public byte[] Create(ReadOnlySpan<byte> alternate) => alternate.ToArray();
    }
}
