using System.Text;
using System.Text.Json;
using AspireAi.Inference.Models.Gguf;
using AspireAi.Inference.Tests.Support;
using AspireAi.Inference.Tokenization;
using Microsoft.ML.Tokenizers;

namespace AspireAi.Inference.Tests.Tokenization;

public sealed class TokenizerBehaviourTests : IDisposable
{
    private static readonly Lazy<(GgufFile File, ITokenizer Tokenizer)> Stories = new(() =>
    {
        var file = GgufFile.Open(TestPaths.SharedModel("stories15M-f32.gguf"));
        return (file, Tokenizers.FromGguf(file));
    });

    private static readonly Lazy<(GgufFile File, ITokenizer Tokenizer)> Gpt2 = new(() =>
    {
        var file = GgufFile.Open(TestPaths.TestData("vocab", "ggml-vocab-gpt-2.gguf"), metadataOnly: true);
        return (file, Tokenizers.FromGguf(file));
    });

    private readonly TempDirectory _temp = new();

    public void Dispose() => _temp.Dispose();

    [Fact]
    public void Stories15M_prompt_encodes_to_the_llama2_ids_with_bos()
    {
        var tokenizer = Stories.Value.Tokenizer;
        Assert.Equal(32000, tokenizer.VocabularySize);
        Assert.Equal((1, 2), (tokenizer.BosId, tokenizer.EosId));
        Assert.True(tokenizer.AddBos);
        Assert.False(tokenizer.AddEos);
        // ▁Once ▁upon ▁a ▁time, as Llama 2's SentencePiece model gives them.
        Assert.Equal([1, 9038, 2501, 263, 931], tokenizer.Encode("Once upon a time"));
        Assert.Equal(["▁Once", "▁upon", "▁a", "▁time"], new[] { 9038, 2501, 263, 931 }.Select(tokenizer.TokenToPiece));
        Assert.Equal(" Once upon a time", tokenizer.Decode([1, 9038, 2501, 263, 931]));
        Assert.Equal("<s> Once", tokenizer.Decode([1, 9038], includeSpecial: true));
        Assert.Contains(2, tokenizer.EndOfGenerationIds);
    }

    [Fact]
    public void Byte_fallback_spells_unknown_characters_in_utf8_bytes()
    {
        var tokenizer = Stories.Value.Tokenizer;
        // 🦙 (F0 9F A6 99) is no piece of the 32k vocabulary: four <0xNN> tokens, ids 3 + byte.
        var ids = tokenizer.Encode("🦙", addSpecial: false);
        Assert.Equal([29871, 3 + 0xF0, 3 + 0x9F, 3 + 0xA6, 3 + 0x99], ids);
        Assert.Equal("▁", tokenizer.TokenToPiece(29871));
        Assert.Equal(TokenKind.Byte, tokenizer.GetKind(3 + 0xF0));
        Assert.Equal(" 🦙", tokenizer.Decode(ids));
    }

    [Fact]
    public void Streaming_never_emits_half_a_character()
    {
        var tokenizer = Stories.Value.Tokenizer;
        var ids = tokenizer.Encode("Lily saw 🦙 and 日本 ok", addSpecial: false);
        var stream = new StreamingDetokenizer(tokenizer);
        var pieces = ids.Select(stream.Push).Append(stream.Flush()).ToList();

        Assert.Equal(" Lily saw 🦙 and 日本 ok", string.Concat(pieces));
        Assert.DoesNotContain(pieces, p => p.Contains('\uFFFD'));
        // The emoji's first three byte tokens give nothing; the fourth completes it.
        var emoji = Array.IndexOf(ids, 3 + 0xF0);
        Assert.Equal(["", "", "", "🦙"], pieces.Skip(emoji).Take(4));
    }

    [Fact]
    public void Special_tokens_in_text_are_single_tokens_only_when_parsed()
    {
        var tokenizer = Stories.Value.Tokenizer;
        var parsed = tokenizer.Encode("Hi</s><s>there", addSpecial: false, parseSpecial: true);
        Assert.Equal(tokenizer.Encode("Hi", addSpecial: false).Concat([2, 1]).Concat(tokenizer.Encode("there", addSpecial: false)), parsed);

        var literal = tokenizer.Encode("Hi</s>", addSpecial: false, parseSpecial: false);
        Assert.DoesNotContain(2, literal);
        Assert.Equal(" Hi</s>", tokenizer.Decode(literal));
    }

    [Fact]
    public void Whitespace_runs_and_newlines_survive_sentencepiece()
    {
        var tokenizer = Stories.Value.Tokenizer;
        foreach (var text in new[] { "a  b", "   ", "\n\n", "tab\there", " lead", "trail " })
        {
            Assert.Equal(" " + text, tokenizer.Decode(tokenizer.Encode(text, addSpecial: false)));
        }
    }

    [Theory]
    [InlineData(BpePreTokenizerKind.Llama3, "Hello world's 12345 ok!!\n\n  x", "Hello| world|'s| |123|45| ok|!!\n\n| | x")]
    [InlineData(BpePreTokenizerKind.Qwen2, "Hello world's 12345 ok!!\n\n  x", "Hello| world|'s| |1|2|3|4|5| ok|!!\n\n| | x")]
    [InlineData(BpePreTokenizerKind.Gpt2, "Hello world's 12345 ok!!\n\n  x", "Hello| world|'s| 12345| ok|!!|\n\n | x")]
    [InlineData(BpePreTokenizerKind.Gpt2SingleDigits, "ab 123", "ab| |1|2|3")]
    [InlineData(BpePreTokenizerKind.Llama3, "I'M 𝐀𝐁 x", "I|'M| 𝐀𝐁| x")]
    [InlineData(BpePreTokenizerKind.Gpt2, "I'M", "I|'|M")]
    public void Pre_tokenizers_split_as_the_reference_regexes(BpePreTokenizerKind kind, string text, string expected)
    {
        // Hand-checked against each regex (see BpePreTokenizerKind): e.g. Llama 3 groups digits by three, keeps "\n\n"
        // with the punctuation before it where GPT-2's \s+(?!\S) takes "\n\n " and leaves one space for " x", and treats the math letters 𝐀𝐁 (outside the BMP) as letters.
        var words = new List<(int Start, int Length)>();
        BpePreTokenizerSplit(text, kind, words);
        Assert.Equal(expected, string.Join('|', words.Select(w => text.Substring(w.Start, w.Length))));
    }

    [Fact]
    public void Byte_level_merges_agree_with_microsoft_ml_tokenizers()
    {
        // Microsoft.ML.Tokenizers' BPE (an independent implementation of the same merge rule) over GPT-2's vocabulary,
        // fed our pre-tokenized words, must give the same ids for every word.
        var (file, ours) = Gpt2.Value;
        var tokens = file.GetStringArray("tokenizer.ggml.tokens");
        var reference = BpeTokenizer.Create(new BpeOptions(tokens.Select((t, i) => new KeyValuePair<string, int>(t, i)))
        {
            Merges = file.GetStringArray("tokenizer.ggml.merges"),
            ByteLevel = true,
        });

        var text = File.ReadAllText(TestPaths.TestData("vocab", "ggml-vocab-gpt-2.gguf.inp")).Replace("\n__ggml_vocab_test__\n", " ");
        var words = new List<(int Start, int Length)>();
        BpePreTokenizerSplit(text, BpePreTokenizerKind.Gpt2, words);
        Assert.True(words.Count > 200);
        foreach (var (start, length) in words)
        {
            var word = text.Substring(start, length);
            var expected = reference.EncodeToIds(word, considerPreTokenization: false, considerNormalization: false);
            Assert.Equal(expected, ours.Encode(word, addSpecial: false));
        }
    }

    [Fact]
    public void Hugging_face_tokenizer_json_gives_the_same_ids_as_the_gguf_vocabulary()
    {
        // A tokenizer.json in the shape transformers writes for GPT-2 (ByteLevel pre-tokenizer, "a b" merges), built from
        // the same vocabulary as the GGUF file: both loaders must tokenize llama.cpp's test inputs identically.
        var (file, fromGguf) = Gpt2.Value;
        var tokens = file.GetStringArray("tokenizer.ggml.tokens");
        var json = new
        {
            version = "1.0",
            added_tokens = new[] { new { id = 50256, content = "<|endoftext|>", special = true } },
            normalizer = (object?)null,
            pre_tokenizer = new { type = "ByteLevel", add_prefix_space = false, trim_offsets = true, use_regex = true },
            post_processor = new { type = "ByteLevel" },
            decoder = new { type = "ByteLevel" },
            model = new
            {
                type = "BPE",
                vocab = tokens.Select((t, i) => (t, i)).ToDictionary(p => p.t, p => p.i),
                merges = file.GetStringArray("tokenizer.ggml.merges").Select(m => m.Split(' ')).ToArray(),
            },
        };
        var folder = Directory.CreateDirectory(_temp.File("gpt2")).FullName;
        File.WriteAllText(Path.Combine(folder, "tokenizer.json"), JsonSerializer.Serialize(json));
        File.WriteAllText(Path.Combine(folder, "tokenizer_config.json"), """{"bos_token":"<|endoftext|>","eos_token":"<|endoftext|>","add_bos_token":false}""");
        var fromJson = Tokenizers.FromHuggingFace(folder);

        Assert.Equal(50256, fromJson.EosId);
        Assert.Contains(50256, fromJson.EndOfGenerationIds);
        var inputs = File.ReadAllText(TestPaths.TestData("vocab", "ggml-vocab-gpt-2.gguf.inp")).Split("\n__ggml_vocab_test__\n");
        foreach (var input in inputs.Append("x<|endoftext|>y"))
        {
            Assert.Equal(fromGguf.Encode(input, addSpecial: false), fromJson.Encode(input, addSpecial: false));
        }

        Assert.Equal([87, 50256, 88], fromJson.Encode("x<|endoftext|>y", addSpecial: false));
        Assert.Equal("x<|endoftext|>y", fromJson.Decode([87, 50256, 88], includeSpecial: true));
    }

    [Fact]
    public void Sentencepiece_style_tokenizer_json_merges_with_byte_fallback()
    {
        // Llama 2's tokenizer.json shape: BPE with ▁ and <0xNN> byte fallback, Prepend/Replace normalizer, BOS template.
        string[] vocab = ["<unk>", "<s>", "</s>", .. Enumerable.Range(0, 256).Select(b => $"<0x{b:X2}>"), "▁", "h", "i", "▁h", "▁hi", "!"];
        var json = $$$"""
        {"added_tokens":[{"id":0,"content":"<unk>","special":true},{"id":1,"content":"<s>","special":true},{"id":2,"content":"</s>","special":true}],
         "normalizer":{"type":"Sequence","normalizers":[{"type":"Prepend","prepend":"▁"},{"type":"Replace","pattern":{"String":" "},"content":"▁"}]},
         "pre_tokenizer":null,
         "post_processor":{"type":"TemplateProcessing","single":[{"SpecialToken":{"id":"<s>","type_id":0}},{"Sequence":{"id":"A","type_id":0}}]},
         "decoder":{"type":"Sequence","decoders":[{"type":"Replace","pattern":{"String":"▁"},"content":" "},{"type":"ByteFallback"}]},
         "model":{"type":"BPE","byte_fallback":true,"unk_token":"<unk>",
           "vocab":{{{{string.Join(",", vocab.Select((v, i) => $"\"{v}\":{i}"))}}}},
           "merges":["▁ h","▁h i","h i"]}}
        """;
        var folder = Directory.CreateDirectory(_temp.File("spm")).FullName;
        File.WriteAllText(Path.Combine(folder, "tokenizer.json"), json);
        File.WriteAllText(Path.Combine(folder, "tokenizer_config.json"), """{"bos_token":"<s>","eos_token":"</s>"}""");
        var tokenizer = Tokenizers.FromHuggingFace(folder);

        int Id(string piece) => Array.IndexOf(vocab, piece);
        Assert.True(tokenizer.AddBos);
        Assert.Equal([1, Id("▁hi"), Id("▁h"), Id("!"), 3 + 0xC3, 3 + 0xA9], tokenizer.Encode("hi h!é"));
        Assert.Equal([Id("▁h"), Id("▁"), 3 + 0xC3, 3 + 0xA9], tokenizer.Encode("h é", addSpecial: false));
        Assert.Equal(" hi h!é", tokenizer.Decode(tokenizer.Encode("hi h!é")));
    }

    [Fact]
    public void Bad_tokenizer_metadata_is_a_clear_error()
    {
        var path = new GgufWriter().Add("tokenizer.ggml.model", "rwkv").AddArray("tokenizer.ggml.tokens", ["a"]).WriteTo(_temp.File("v.gguf"));
        using var file = GgufFile.Open(path, metadataOnly: true);
        var error = Assert.Throws<AspireAi.Inference.Models.ModelFormatException>(() => Tokenizers.FromGguf(file));
        Assert.Contains("key 'tokenizer.ggml.model': tokenizer 'rwkv' is not supported; supported: llama (SentencePiece), gpt2 (byte-level BPE)", error.Message);
    }

    [Theory]
    [InlineData("""{"type":"Split","pattern":{"Regex":"\\p{L}+|\\s+"},"behavior":"Isolated","invert":false}""", "pre_tokenizer", "split regex '\\p{L}+|\\s+' is not supported")]
    [InlineData("""{"type":"Split","pattern":{"String":" "},"behavior":"Removed","invert":false}""", "pre_tokenizer", "split regex 'string  ' is not supported")]
    public void Byte_level_tokenizer_json_with_an_unknown_split_is_a_clear_error(string split, string field, string problem)
    {
        var folder = Directory.CreateDirectory(_temp.File("unknown-split")).FullName;
        File.WriteAllText(Path.Combine(folder, "tokenizer.json"), $$$"""
            {"added_tokens":[],"normalizer":null,
             "pre_tokenizer":{"type":"Sequence","pretokenizers":[{{{split}}},{"type":"ByteLevel","add_prefix_space":false,"use_regex":false}]},
             "model":{"type":"BPE","vocab":{"a":0,"b":1},"merges":[]}}
            """);
        var error = Assert.Throws<AspireAi.Inference.Models.ModelFormatException>(() => Tokenizers.FromHuggingFace(folder));
        Assert.Contains("tokenizer.json", error.Message);
        Assert.Contains(field, error.Message);
        Assert.Contains(problem, error.Message);
    }

    private static void BpePreTokenizerSplit(string text, BpePreTokenizerKind kind, List<(int, int)> words) =>
        BpePreTokenizer.Split(text, kind, words);
}
