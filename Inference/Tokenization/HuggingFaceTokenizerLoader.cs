using System.Text;
using System.Text.Json;
using AspireAi.Inference.Models;

namespace AspireAi.Inference.Tokenization;

/// <summary>
/// Builds a tokenizer from a Hugging Face folder: <c>tokenizer.json</c> (a BPE model: vocabulary, merges, added tokens,
/// normalizer/pre-tokenizer telling byte-level from SentencePiece-style) and <c>tokenizer_config.json</c> (BOS/EOS, whether
/// to add them), plus <c>generation_config.json</c>'s extra end-of-generation ids when present.
/// </summary>
internal static class HuggingFaceTokenizerLoader
{
    public static ITokenizer Load(string folder)
    {
        var path = Path.Combine(folder, "tokenizer.json");
        if (!File.Exists(path))
        {
            throw new ModelFormatException(folder, "tokenizer.json", "is missing (only the fast-tokenizer JSON is supported, not tokenizer.model alone)");
        }

        using var json = Parse(path);
        var root = json.RootElement;
        var model = root.GetProperty("model");
        var type = model.TryGetProperty("type", out var t) ? t.GetString() : "BPE";
        if (type != "BPE")
        {
            throw new ModelFormatException(path, "model.type", $"tokenizer model '{type}' is not supported; supported: BPE");
        }

        var pieces = new Dictionary<int, string>();
        foreach (var entry in model.GetProperty("vocab").EnumerateObject())
        {
            pieces[entry.Value.GetInt32()] = entry.Name;
        }

        var added = new Dictionary<int, TokenKind>();
        var addedOptions = new Dictionary<int, AddedTokenOptions>();
        if (root.TryGetProperty("added_tokens", out var addedTokens))
        {
            foreach (var token in addedTokens.EnumerateArray())
            {
                var id = token.GetProperty("id").GetInt32();
                pieces[id] = token.GetProperty("content").GetString()!;
                var special = Flag(token, "special") ?? false;
                added[id] = special ? TokenKind.Control : TokenKind.UserDefined;
                // Hugging Face's defaults: special tokens are matched in the raw text, others after normalization.
                addedOptions[id] = new AddedTokenOptions(Flag(token, "lstrip") ?? false, Flag(token, "rstrip") ?? false, Flag(token, "single_word") ?? false, Flag(token, "normalized") ?? !special);
            }
        }

        var count = pieces.Keys.Max() + 1;
        if (pieces.Keys.Min() < 0)
        {
            throw new ModelFormatException(path, "model.vocab", "has a negative token id");
        }

        var rawText = root.GetRawText();
        var byteLevel = rawText.Contains("\"ByteLevel\"", StringComparison.Ordinal);
        var tokens = new string[count];
        var kinds = new TokenKind[count];
        for (var i = 0; i < count; i++)
        {
            tokens[i] = pieces.GetValueOrDefault(i) ?? $"[PAD{i}]";
            kinds[i] = added.TryGetValue(i, out var kind) ? kind
                : !pieces.ContainsKey(i) ? TokenKind.Unused
                : !byteLevel && tokens[i].Length == 6 && tokens[i].StartsWith("<0x", StringComparison.Ordinal) ? TokenKind.Byte
                : TokenKind.Normal;
            if (GgufTokenizerLoader.EndOfGenerationTexts.Contains(tokens[i]))
            {
                kinds[i] = TokenKind.Control;
            }
        }

        var merges = ReadMerges(model, path);
        var config = ReadConfig(folder);
        int IdOfToken(string? text) => text is null ? -1 : Array.IndexOf(tokens, text);
        var bos = IdOfToken(config.Bos);
        var eos = IdOfToken(config.Eos);
        var eog = config.ExtraEos.Where(id => id >= 0 && id < count).ToList();
        for (var i = 0; i < count; i++)
        {
            if (GgufTokenizerLoader.EndOfGenerationTexts.Contains(tokens[i]))
            {
                eog.Add(i);
            }
        }

        var vocabulary = new Vocabulary(tokens, null, kinds)
        {
            BosId = bos,
            EosId = eos,
            UnknownId = model.TryGetProperty("unk_token", out var unk) && unk.ValueKind == JsonValueKind.String ? IdOfToken(unk.GetString()) : -1,
            ExtraEndOfGenerationIds = eog,
            AddedTokenOptions = addedOptions,
        };

        // add_bos_token in tokenizer_config.json wins; else a post-processor template that starts with BOS adds it.
        var addBos = config.AddBos ?? (bos >= 0 && PostProcessorStartsWith(root, config.Bos!));
        var addEos = config.AddEos ?? false;
        if (!byteLevel)
        {
            var spacesReplaced = root.TryGetProperty("normalizer", out var spmNormalizer) && spmNormalizer.GetRawText().Contains("\"Replace\"", StringComparison.Ordinal);
            var mode = BpeMode.SentencePiece(rawText.Contains("\"Prepend\"", StringComparison.Ordinal) || rawText.Contains("\"Metaspace\"", StringComparison.Ordinal), spacesReplaced);
            return new BytePairTokenizer(vocabulary, merges, mode, addBos, addEos);
        }

        var preTokenizer = ReadPreTokenizer(root, path);
        var ignoreMerges = model.TryGetProperty("ignore_merges", out var im) && im.ValueKind == JsonValueKind.True;
        return new BytePairTokenizer(vocabulary, merges, BpeMode.ByteLevel(preTokenizer, ignoreMerges, ReadNormalization(root, path)), addBos, addEos);
    }

    /// <summary>
    /// Which of the split regexes the byte-level pre-tokenizer uses, read from the JSON values (not its raw text: writers may
    /// escape the regex's characters, e.g. <c>+</c> as <c>\u002B</c>). A <c>Split</c> with a regex we have no matcher for is an
    /// error rather than a silent GPT-2 split, which would tokenize differently from the model's training.
    /// </summary>
    private static BpePreTokenizerKind ReadPreTokenizer(JsonElement root, string path)
    {
        var regexes = new List<string>();
        var singleDigits = false;
        if (root.TryGetProperty("pre_tokenizer", out var pre))
        {
            Walk(pre);
        }

        void Walk(JsonElement node)
        {
            if (node.ValueKind != JsonValueKind.Object || !node.TryGetProperty("type", out var type))
            {
                return;
            }

            switch (type.GetString())
            {
                case "Sequence" when node.TryGetProperty("pretokenizers", out var list) && list.ValueKind == JsonValueKind.Array:
                    foreach (var item in list.EnumerateArray())
                    {
                        Walk(item);
                    }

                    break;
                case "Split" when node.TryGetProperty("pattern", out var pattern) && pattern.ValueKind == JsonValueKind.Object:
                    regexes.Add(pattern.TryGetProperty("Regex", out var regex) ? regex.GetString() ?? "" : pattern.TryGetProperty("String", out var text) ? "string " + text.GetString() : "");
                    break;
                case "Digits" when node.TryGetProperty("individual_digits", out var individual) && individual.ValueKind == JsonValueKind.True:
                    singleDigits = true;
                    break;
            }
        }

        if (regexes.Count == 0)
        {
            return singleDigits ? BpePreTokenizerKind.Gpt2SingleDigits : BpePreTokenizerKind.Gpt2;
        }

        const string LetterWord = @"[^\r\n\p{L}\p{N}]?\p{L}+";
        return regexes is [var only] && only.Contains(LetterWord, StringComparison.Ordinal) && only.Contains(@"\p{N}{1,3}", StringComparison.Ordinal) ? BpePreTokenizerKind.Llama3
            : regexes is [var single] && single.Contains(LetterWord, StringComparison.Ordinal) && single.Contains(@"|\p{N}|", StringComparison.Ordinal) ? BpePreTokenizerKind.Qwen2
            : regexes is [Gpt2Regex] ? (singleDigits ? BpePreTokenizerKind.Gpt2SingleDigits : BpePreTokenizerKind.Gpt2)
            : throw new ModelFormatException(path, "pre_tokenizer", $"split regex {string.Join(", ", regexes.Select(r => $"'{r}'"))} is not supported; supported: the GPT-2, Llama 3 and Qwen2 regexes");
    }

    private const string Gpt2Regex = @"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+";

    /// <summary>The Unicode normalization a byte-level <c>tokenizer.json</c> asks for (Qwen2: NFC), or null.</summary>
    private static NormalizationForm? ReadNormalization(JsonElement root, string path)
    {
        if (!root.TryGetProperty("normalizer", out var normalizer) || normalizer.ValueKind != JsonValueKind.Object)
        {
            return null;
        }

        var forms = new List<NormalizationForm>();
        Walk(normalizer);
        if (forms.Count == 1 && "e\u0301".Normalize(forms[0]) == "e\u0301" && forms[0] is NormalizationForm.FormC or NormalizationForm.FormKC)
        {
            // Globalization-invariant mode makes Normalize a silent no-op: refuse rather than tokenize unnormalized text.
            throw new ModelFormatException(path, "normalizer", $"asks for Unicode {forms[0]} normalization, which this process cannot do (globalization-invariant mode, or no ICU library)");
        }

        return forms switch
        {
            [] => null,
            [var form] => form,
            _ => throw new ModelFormatException(path, "normalizer", $"{forms.Count} Unicode normalizations in a row are not supported"),
        };

        void Walk(JsonElement node)
        {
            switch (node.TryGetProperty("type", out var type) ? type.GetString() : null)
            {
                case "Sequence" when node.TryGetProperty("normalizers", out var list) && list.ValueKind == JsonValueKind.Array:
                    foreach (var item in list.EnumerateArray())
                    {
                        Walk(item);
                    }

                    break;
                case "NFC": forms.Add(NormalizationForm.FormC); break;
                case "NFD": forms.Add(NormalizationForm.FormD); break;
                case "NFKC": forms.Add(NormalizationForm.FormKC); break;
                case "NFKD": forms.Add(NormalizationForm.FormKD); break;
                case var other:
                    throw new ModelFormatException(path, "normalizer", $"normalizer '{other}' is not supported for a byte-level vocabulary; supported: NFC, NFD, NFKC, NFKD");
            }
        }
    }

    private static bool? Flag(JsonElement token, string name) =>
        token.TryGetProperty(name, out var value) && value.ValueKind is JsonValueKind.True or JsonValueKind.False ? value.GetBoolean() : null;

    private static JsonDocument Parse(string path)
    {
        try
        {
            return JsonDocument.Parse(File.ReadAllBytes(path), new JsonDocumentOptions { AllowTrailingCommas = true });
        }
        catch (JsonException e)
        {
            throw new ModelFormatException(path, null, $"is not valid JSON: {e.Message}", e);
        }
    }

    private static List<string> ReadMerges(JsonElement model, string path)
    {
        var merges = new List<string>();
        if (!model.TryGetProperty("merges", out var list))
        {
            return merges;
        }

        foreach (var merge in list.EnumerateArray())
        {
            // Older files write "a b"; newer ones ["a", "b"] (pieces may then contain spaces).
            merges.Add(merge.ValueKind switch
            {
                JsonValueKind.String => merge.GetString()!,
                JsonValueKind.Array when merge.GetArrayLength() == 2 => $"{merge[0].GetString()} {merge[1].GetString()}",
                _ => throw new ModelFormatException(path, "model.merges", $"entry {merges.Count} is neither \"a b\" nor [\"a\", \"b\"]"),
            });
        }

        return merges;
    }

    private static bool PostProcessorStartsWith(JsonElement root, string bos)
    {
        if (!root.TryGetProperty("post_processor", out var pp) || pp.ValueKind != JsonValueKind.Object ||
            !pp.TryGetProperty("single", out var single) || single.ValueKind != JsonValueKind.Array || single.GetArrayLength() == 0)
        {
            return false;
        }

        return single[0].TryGetProperty("SpecialToken", out var first) && first.TryGetProperty("id", out var id) && id.GetString() == bos;
    }

    internal sealed record TokenizerConfig(string? Bos, string? Eos, bool? AddBos, bool? AddEos, IReadOnlyList<int> ExtraEos, string? ChatTemplate);

    internal static TokenizerConfig ReadConfig(string folder)
    {
        string? bos = null, eos = null, template = null;
        bool? addBos = null, addEos = null;
        var path = Path.Combine(folder, "tokenizer_config.json");
        if (File.Exists(path))
        {
            using var json = Parse(path);
            var root = json.RootElement;
            bos = TokenText(root, "bos_token");
            eos = TokenText(root, "eos_token");
            addBos = root.TryGetProperty("add_bos_token", out var ab) && ab.ValueKind is JsonValueKind.True or JsonValueKind.False ? ab.GetBoolean() : null;
            addEos = root.TryGetProperty("add_eos_token", out var ae) && ae.ValueKind is JsonValueKind.True or JsonValueKind.False ? ae.GetBoolean() : null;
            if (root.TryGetProperty("chat_template", out var ct))
            {
                // Either one template, or a list of {name, template} of which "default" is the chat one.
                template = ct.ValueKind == JsonValueKind.String ? ct.GetString()
                    : ct.ValueKind == JsonValueKind.Array ? ct.EnumerateArray().FirstOrDefault(e => e.GetProperty("name").GetString() == "default") is { ValueKind: JsonValueKind.Object } d ? d.GetProperty("template").GetString() : null
                    : null;
            }
        }

        var jinja = Path.Combine(folder, "chat_template.jinja");
        if (File.Exists(jinja))
        {
            template = File.ReadAllText(jinja);
        }

        var extra = new List<int>();
        var generation = Path.Combine(folder, "generation_config.json");
        if (File.Exists(generation))
        {
            using var json = Parse(generation);
            if (json.RootElement.TryGetProperty("eos_token_id", out var e))
            {
                if (e.ValueKind == JsonValueKind.Number)
                {
                    extra.Add(e.GetInt32());
                }
                else if (e.ValueKind == JsonValueKind.Array)
                {
                    extra.AddRange(e.EnumerateArray().Select(x => x.GetInt32()));
                }
            }
        }

        return new TokenizerConfig(bos, eos, addBos, addEos, extra, template);
    }

    private static string? TokenText(JsonElement root, string name) =>
        !root.TryGetProperty(name, out var v) ? null
        : v.ValueKind == JsonValueKind.String ? v.GetString()
        : v.ValueKind == JsonValueKind.Object && v.TryGetProperty("content", out var c) ? c.GetString()
        : null;
}
