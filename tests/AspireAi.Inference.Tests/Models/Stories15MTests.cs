using System.Text.RegularExpressions;
using AspireAi.Inference.Backends.Cpu;
using AspireAi.Inference.Engine;
using AspireAi.Inference.Models;
using AspireAi.Inference.Models.Gguf;
using AspireAi.Inference.Tests.Support;
using AspireAi.Inference.Tokenization;

namespace AspireAi.Inference.Tests.Models;

/// <summary>The real, trained stories15M files from <c>../shared/models</c>: greedy text against the README, quantized files against F32.</summary>
public sealed partial class Stories15MTests
{
    private static readonly int[] OnceUponATime = [1, 9038, 2501, 263, 931];

    [Fact]
    public void F32_greedy_continuation_is_the_readme_text()
    {
        var readme = File.ReadAllText(TestPaths.SharedModel("README.md"));
        var expected = ReadmeGreedy().Match(readme).Groups[1].Value;
        Assert.StartsWith(", there was", expected);

        using var file = GgufFile.Open(TestPaths.SharedModel("stories15M-f32.gguf"));
        var tokenizer = Tokenizers.FromGguf(file);
        Assert.Equal(OnceUponATime, tokenizer.Encode("Once upon a time"));
        var result = Generate(file, tokenizer, 30);
        Assert.StartsWith(expected, result.Text);
        Assert.Equal(tokenizer.Decode(result.TokenIds), result.Text);
    }

    /// <summary>
    /// Quantized files give F32's greedy tokens: all of the first 24 for F16, Q8_0, Q6_K and Q4_K_M. Q4_0 (the coarsest)
    /// follows for 15 tokens, then prefers " and" to " in" ("play outside and explore…"); there F32's choice must still be
    /// its runner-up, i.e. the files disagree only where the model is nearly undecided, not through a wrong kernel.
    /// </summary>
    [Theory]
    [InlineData("stories15M-f16.gguf", 24)]
    [InlineData("stories15M-q8_0.gguf", 24)]
    [InlineData("stories15M-q6_k.gguf", 24)]
    [InlineData("stories15M-q4_k_m.gguf", 24)]
    [InlineData("stories15M-q4_0.gguf", 15)]
    public void Quantized_files_follow_f32_greedy_tokens(string fileName, int sameTokens)
    {
        var reference = F32Tokens.Value;
        using var file = GgufFile.Open(TestPaths.SharedModel(fileName));
        var result = Generate(file, null, 24, topLogprobs: 2);
        Assert.Equal(reference[..sameTokens], result.TokenIds[..sameTokens]);
        if (sameTokens < 24)
        {
            Assert.NotEqual(reference[sameTokens], result.TokenIds[sameTokens]);
            Assert.Equal(reference[sameTokens], result.TopLogprobs![sameTokens][1].Id);
        }
    }

    private static readonly Lazy<int[]> F32Tokens = new(() =>
    {
        using var f32 = GgufFile.Open(TestPaths.SharedModel("stories15M-f32.gguf"));
        return Generate(f32, null, 24).TokenIds;
    });

    private static GenerationResult Generate(GgufFile file, ITokenizer? tokenizer, int tokens, int topLogprobs = 0)
    {
        using var backend = new CpuBackend(threads: 2);
        using var model = new LlamaModel(file, backend, maxBatchTokens: 32, maxLogitRows: 1);
        using var generator = new Generator(model, tokenizer);
        return generator.Generate(OnceUponATime, new GenerationRequest { MaxTokens = tokens, TopLogprobs = topLogprobs });
    }

    [GeneratedRegex("""greedy output of "Once upon a time" \| `([^`]*?)`""")]
    private static partial Regex ReadmeGreedy();
}
