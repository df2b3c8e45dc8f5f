using AspireAi.Inference.Models.Gguf;
using AspireAi.Inference.Tests.Support;
using AspireAi.Inference.Tokenization;

namespace AspireAi.Inference.Tests.Tokenization;

/// <summary>llama.cpp's own tokenizer test cases (test-tokenizer-0) on real vocabularies: our ids must equal theirs.</summary>
public sealed class LlamaCppVocabTests
{
    public static TheoryData<string, string> Vocabularies => new()
    {
        { "ggml-vocab-llama-spm.gguf", "ggml-vocab-llama-spm.gguf" },
        { "ggml-vocab-phi-3.gguf", "ggml-vocab-phi-3.gguf" },
        { "ggml-vocab-gpt-2.gguf", "ggml-vocab-gpt-2.gguf" },
        { "ggml-vocab-starcoder.gguf", "ggml-vocab-starcoder.gguf" },
        // stories15M's vocabulary is Llama 2's: llama.cpp's Llama 2 expectations hold for it too.
        { "stories15M", "ggml-vocab-llama-spm.gguf" },
    };

    [Theory]
    [MemberData(nameof(Vocabularies))]
    public void Ids_equal_llama_cpp(string vocabulary, string cases)
    {
        var path = vocabulary == "stories15M" ? TestPaths.SharedModel("stories15M-q8_0.gguf") : TestPaths.TestData("vocab", vocabulary);
        using var file = GgufFile.Open(path, metadataOnly: true);
        var tokenizer = Tokenizers.FromGguf(file);

        var tests = ReadCases(TestPaths.TestData("vocab", cases + ".inp"));
        Assert.True(tests.Count > 30);
        var failures = new List<string>();
        foreach (var (text, expected) in tests)
        {
            var ids = tokenizer.Encode(text, addSpecial: false, parseSpecial: false);
            if (!ids.SequenceEqual(expected))
            {
                failures.Add($"'{text}': expected [{string.Join(' ', expected)}], got [{string.Join(' ', ids)}]");
            }

            // Decoding gives back the text (SentencePiece adds its dummy-prefix space).
            var decoded = tokenizer.Decode(ids);
            var roundTrip = tokenizer is SentencePieceTokenizer && text.Length > 0 ? " " + text : text;
            if (decoded != roundTrip && ids.SequenceEqual(expected))
            {
                failures.Add($"'{text}': decoded as '{decoded}'");
            }
        }

        Assert.True(failures.Count == 0, string.Join('\n', failures));
    }

    internal static List<(string Text, int[] Ids)> ReadCases(string inputPath)
    {
        // As test-tokenizer-0.cpp: inputs split on "\n__ggml_vocab_test__\n", one line of ids per input.
        var raw = File.ReadAllText(inputPath);
        var inputs = new List<string>();
        const string separator = "\n__ggml_vocab_test__\n";
        for (var pos = 0; pos < raw.Length;)
        {
            var next = raw.IndexOf(separator, pos, StringComparison.Ordinal);
            if (next < 0)
            {
                inputs.Add(raw[pos..]);
                break;
            }

            inputs.Add(raw[pos..next]);
            pos = next + separator.Length;
        }

        var outputs = File.ReadAllLines(inputPath[..^4] + ".out");
        Assert.Equal(inputs.Count, outputs.Length);
        return inputs.Zip(outputs, (i, o) => (i, o.Trim().Length == 0 ? [] : o.Trim().Split(' ').Select(int.Parse).ToArray())).ToList();
    }
}
