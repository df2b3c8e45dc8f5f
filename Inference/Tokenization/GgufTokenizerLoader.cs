using AspireAi.Inference.Models;
using AspireAi.Inference.Models.Gguf;

namespace AspireAi.Inference.Tokenization;

/// <summary>
/// Builds the tokenizer a GGUF file describes (<c>tokenizer.ggml.*</c> keys, as llama.cpp's <c>llama_vocab::impl::load</c>):
/// <c>llama</c> → SentencePiece-style, <c>gpt2</c> → byte-level BPE with the pre-tokenizer named by <c>tokenizer.ggml.pre</c>.
/// </summary>
internal static class GgufTokenizerLoader
{
    // tokenizer.ggml.pre values → splitter (+ Llama 3's ignore_merges), per llama-vocab.cpp.
    private static readonly Dictionary<string, (BpePreTokenizerKind Kind, bool IgnoreMerges, bool AddBos)> PreTokenizers = new(StringComparer.Ordinal)
    {
        ["default"] = (BpePreTokenizerKind.Gpt2, false, false),
        ["gpt-2"] = (BpePreTokenizerKind.Gpt2, false, false),
        ["phi-2"] = (BpePreTokenizerKind.Gpt2, false, false),
        ["mpt"] = (BpePreTokenizerKind.Gpt2, false, false),
        ["olmo"] = (BpePreTokenizerKind.Gpt2, false, false),
        ["llama3"] = (BpePreTokenizerKind.Llama3, true, true),
        ["llama-v3"] = (BpePreTokenizerKind.Llama3, true, true),
        ["llama-bpe"] = (BpePreTokenizerKind.Llama3, true, true),
        ["falcon3"] = (BpePreTokenizerKind.Llama3, true, true),
        ["pixtral"] = (BpePreTokenizerKind.Llama3, true, true),
        ["dbrx"] = (BpePreTokenizerKind.Llama3, false, false),
        ["smaug-bpe"] = (BpePreTokenizerKind.Llama3, false, false),
        ["qwen2"] = (BpePreTokenizerKind.Qwen2, false, false),
        ["deepseek-r1-qwen"] = (BpePreTokenizerKind.Qwen2, false, false),
        ["stablelm2"] = (BpePreTokenizerKind.Qwen2, false, false),
        ["smollm"] = (BpePreTokenizerKind.Gpt2SingleDigits, false, false),
        ["starcoder"] = (BpePreTokenizerKind.Gpt2SingleDigits, false, false),
        ["refact"] = (BpePreTokenizerKind.Gpt2SingleDigits, false, false),
        ["codeshell"] = (BpePreTokenizerKind.Gpt2SingleDigits, false, false),
        ["command-r"] = (BpePreTokenizerKind.Gpt2SingleDigits, false, false),
        ["exaone"] = (BpePreTokenizerKind.Gpt2SingleDigits, false, false),
    };

    // Texts llama.cpp treats as end of generation (and forces to control type) wherever they occur in a vocabulary.
    internal static readonly HashSet<string> EndOfGenerationTexts = new(StringComparer.Ordinal)
    {
        "<|eot_id|>", "<|im_end|>", "<|end|>", "<|return|>", "<|call|>", "<end_of_turn>", "<|endoftext|>", "<|eom_id|>",
        "<EOT>", "_<EOT>", "<|end_of_text|>", "<end_of_utterance>",
    };

    public static ITokenizer Load(GgufFile file)
    {
        var model = file.GetString("tokenizer.ggml.model");
        var tokens = file.GetStringArray("tokenizer.ggml.tokens");
        if (tokens.Length == 0)
        {
            throw file.KeyError("tokenizer.ggml.tokens", "is empty");
        }

        float[]? scores = null;
        if (file.TryGetFloat32Array("tokenizer.ggml.scores", out var s))
        {
            scores = s.Length >= tokens.Length ? s : throw file.KeyError("tokenizer.ggml.scores", $"has {s.Length} scores for {tokens.Length} tokens");
        }

        var kinds = new TokenKind[tokens.Length];
        if (file.TryGetInt32Array("tokenizer.ggml.token_type", out var types))
        {
            if (types.Length < tokens.Length)
            {
                throw file.KeyError("tokenizer.ggml.token_type", $"has {types.Length} types for {tokens.Length} tokens");
            }

            for (var i = 0; i < tokens.Length; i++)
            {
                kinds[i] = types[i] is >= 0 and <= 6 ? (TokenKind)types[i] : TokenKind.Undefined;
            }
        }
        else
        {
            Array.Fill(kinds, TokenKind.Normal);
        }

        var isSentencePiece = model switch
        {
            "llama" => true,
            "gpt2" => false,
            _ => throw file.KeyError("tokenizer.ggml.model", $"tokenizer '{model}' is not supported; supported: llama (SentencePiece), gpt2 (byte-level BPE)"),
        };

        var extraEog = new List<int>();
        foreach (var key in new[] { "tokenizer.ggml.eot_token_id", "tokenizer.ggml.eom_token_id" })
        {
            if (Id(file, key, tokens.Length, -1) is var id and >= 0)
            {
                extraEog.Add(id);
            }
        }

        for (var i = 0; i < tokens.Length; i++)
        {
            if (EndOfGenerationTexts.Contains(tokens[i]))
            {
                extraEog.Add(i);
                kinds[i] = TokenKind.Control;
            }
        }

        var vocabulary = new Vocabulary(tokens, scores, kinds)
        {
            BosId = Id(file, "tokenizer.ggml.bos_token_id", tokens.Length, isSentencePiece ? 1 : -1),
            EosId = Id(file, "tokenizer.ggml.eos_token_id", tokens.Length, isSentencePiece ? 2 : -1),
            UnknownId = Id(file, "tokenizer.ggml.unknown_token_id", tokens.Length, isSentencePiece ? 0 : -1),
            ExtraEndOfGenerationIds = extraEog,
        };

        if (isSentencePiece)
        {
            var addSpacePrefix = !file.TryGetBool("tokenizer.ggml.add_space_prefix", out var asp) || asp;
            return new SentencePieceTokenizer(vocabulary, Flag(file, "tokenizer.ggml.add_bos_token", true), Flag(file, "tokenizer.ggml.add_eos_token", false), addSpacePrefix);
        }

        var pre = file.TryGetString("tokenizer.ggml.pre", out var p) ? p : "default";
        if (!PreTokenizers.TryGetValue(pre, out var preTokenizer))
        {
            throw file.KeyError("tokenizer.ggml.pre", $"pre-tokenizer '{pre}' is not supported; supported: {string.Join(", ", PreTokenizers.Keys)}");
        }

        var merges = file.GetStringArray("tokenizer.ggml.merges");
        return new BytePairTokenizer(vocabulary, merges, BpeMode.ByteLevel(preTokenizer.Kind, preTokenizer.IgnoreMerges),
            Flag(file, "tokenizer.ggml.add_bos_token", preTokenizer.AddBos), Flag(file, "tokenizer.ggml.add_eos_token", false));
    }

    private static bool Flag(GgufFile file, string key, bool fallback) => file.TryGetBool(key, out var value) ? value : fallback;

    private static int Id(GgufFile file, string key, int count, int fallback)
    {
        if (!file.TryGetInt32(key, out var id))
        {
            return fallback < count ? fallback : -1;
        }

        return id >= 0 && id < count ? id : throw file.KeyError(key, $"token id {id} is outside the vocabulary of {count}");
    }
}
