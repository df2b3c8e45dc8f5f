using System.Text.Json.Nodes;
using AspireAi.Inference.Models;
using AspireAi.Inference.Models.Gguf;
using AspireAi.Inference.Tests.Support;
using AspireAi.Inference.Tests.Tokenization;
using AspireAi.Inference.Tokenization;

namespace AspireAi.Inference.Tests.SafeTensors;

/// <summary>
/// A Hugging Face folder as the tests write it, with GPT-2's real vocabulary and merges as tokenizer.json: the folder
/// model finds its tokenizer and chat template through <see cref="Tokenizers.For"/> / <see cref="ChatTemplate.For"/>, and
/// tokenizes exactly as llama.cpp does on the same vocabulary.
/// </summary>
public sealed class HuggingFaceFolderTokenizerTests : IDisposable
{
    private readonly TempDirectory _temp = new();

    public void Dispose() => _temp.Dispose();

    [Fact]
    public void Folder_tokenizer_and_template_are_found_and_tokenize_as_llama_cpp()
    {
        var vocabPath = TestPaths.TestData("vocab", "ggml-vocab-gpt-2.gguf");
        string[] tokens, merges;
        using (var vocab = GgufFile.Open(vocabPath, metadataOnly: true))
        {
            tokens = vocab.GetStringArray("tokenizer.ggml.tokens");
            merges = vocab.GetStringArray("tokenizer.ggml.merges");
        }

        var tiny = new TinyHfModel { DType = "BF16", Embedding = 16, Heads = 2, KvHeads = 2, FeedForward = 32, Layers = 1, Vocabulary = tokens.Length };
        var folder = tiny.WriteFolder(_temp.File("gpt2-vocab"));
        var vocabJson = new JsonObject();
        for (var i = 0; i < tokens.Length; i++)
        {
            vocabJson[tokens[i]] = i;
        }

        var tokenizerJson = new JsonObject
        {
            ["version"] = "1.0",
            ["added_tokens"] = new JsonArray(new JsonObject { ["id"] = 50256, ["content"] = "<|endoftext|>", ["special"] = true }),
            ["normalizer"] = null,
            ["pre_tokenizer"] = new JsonObject { ["type"] = "ByteLevel", ["add_prefix_space"] = false, ["trim_offsets"] = true, ["use_regex"] = true },
            ["decoder"] = new JsonObject { ["type"] = "ByteLevel" },
            ["model"] = new JsonObject { ["type"] = "BPE", ["vocab"] = vocabJson, ["merges"] = new JsonArray(merges.Select(m => (JsonNode)m!).ToArray()) },
        };
        File.WriteAllText(Path.Combine(folder, "tokenizer.json"), tokenizerJson.ToJsonString());
        File.WriteAllText(Path.Combine(folder, "tokenizer_config.json"), new JsonObject
        {
            ["bos_token"] = "<|endoftext|>",
            ["eos_token"] = "<|endoftext|>",
            ["add_bos_token"] = false,
        }.ToJsonString());
        File.WriteAllText(Path.Combine(folder, "chat_template.jinja"), "{% for m in messages %}<{{ m.role }}>{{ m.content }}{{ eos_token }}{% endfor %}");

        using var model = ModelLoader.Open(folder);
        var tokenizer = Tokenizers.For(model);
        Assert.Equal(model.Config.VocabularySize, tokenizer.VocabularySize);
        Assert.Equal(50256, tokenizer.EosId);

        var cases = LlamaCppVocabTests.ReadCases(TestPaths.TestData("vocab", "ggml-vocab-gpt-2.gguf.inp"));
        Assert.True(cases.Count > 30);
        Assert.All(cases, c => Assert.Equal(c.Ids, tokenizer.Encode(c.Text, addSpecial: false, parseSpecial: false)));

        var template = ChatTemplate.For(model, tokenizer);
        Assert.NotNull(template);
        Assert.Equal("<user>Hi<|endoftext|>", template.Render([new ChatMessage("user", "Hi")], addGenerationPrompt: false));
    }
}
