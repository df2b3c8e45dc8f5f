using System.Text.RegularExpressions;
using AspireAi.Inference.Backends.Cpu;
using AspireAi.Inference.Engine;
using AspireAi.Inference.Models;
using AspireAi.Inference.Models.Gguf;
using AspireAi.Inference.Tests.Support;
using AspireAi.Inference.Tokenization;

namespace AspireAi.Inference.Tests.TensorParallel;

/// <summary>
/// The real stories15M (6 heads of 48, FFN 768, 32,000 tokens) over two and three CPU ranks: sizes that divide its heads and
/// FFN. Three does not divide its vocabulary, so each rank computes 10,667 logits, the last one of them padding
/// (ShardPlan.VocabularyShard). Each rank's 144 (or 96) columns of <c>attn_output</c> are whole blocks only for the float
/// files, so the F32 file runs and the Q8_0 file is refused by name.
/// </summary>
public sealed partial class TensorParallelStories15MTests
{
    private static readonly int[] OnceUponATime = [1, 9038, 2501, 263, 931];

    [Theory]
    [InlineData(2)]
    [InlineData(3)]
    public void F32_over_two_or_three_ranks_continues_as_the_whole_model_and_the_readme(int size)
    {
        var readme = File.ReadAllText(TestPaths.SharedModel("README.md"));
        var expected = ReadmeGreedy().Match(readme).Groups[1].Value;
        using var file = GgufFile.Open(TestPaths.SharedModel("stories15M-f32.gguf"));
        var tokenizer = Tokenizers.FromGguf(file);
        var request = new GenerationRequest { MaxTokens = 24 };
        var ct = TestContext.Current.CancellationToken;

        using var backend = new CpuBackend(threads: 2);
        using var whole = new LlamaModel(file, backend, maxBatchTokens: 32, maxLogitRows: 1);
        using var wholeGenerator = new Generator(whole, tokenizer);
        var wholeResult = wholeGenerator.Generate(OnceUponATime, request, cancellation: ct);

        using var split = TensorParallelForwardTests.Split(file, size, maxBatchTokens: 32, maxLogitRows: 1);
        using var splitGenerator = new Generator(split, tokenizer);
        var splitResult = splitGenerator.Generate(OnceUponATime, request, cancellation: ct);

        Assert.Equal(wholeResult.TokenIds, splitResult.TokenIds);
        Assert.StartsWith(expected[..40], splitResult.Text);
    }

    [Fact]
    public void Q8_0_over_two_ranks_is_refused_at_the_attention_output_whose_split_cuts_blocks()
    {
        using var file = GgufFile.Open(TestPaths.SharedModel("stories15M-q8_0.gguf"));
        var error = Assert.Throws<ArgumentException>(() => TensorParallelForwardTests.Split(file, 2, 16, 1));
        Assert.Contains("'blk.0.attn_output.weight' (Q8_0, shape [288, 288])", error.Message);
        Assert.Contains("tensor-parallel size 2", error.Message);
        Assert.Contains("144 of its 288 columns", error.Message);
        Assert.Contains("32-value blocks", error.Message);
    }

    [GeneratedRegex("""greedy output of "Once upon a time" \| `([^`]*?)`""")]
    private static partial Regex ReadmeGreedy();
}
