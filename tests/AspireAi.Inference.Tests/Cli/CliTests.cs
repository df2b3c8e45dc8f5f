using System.Text.Json;
using AspireAi.Inference.Cli;
using AspireAi.Inference.Models;
using AspireAi.Inference.Tests.Models;
using AspireAi.Inference.Tests.Support;

namespace AspireAi.Inference.Tests.Cli;

/// <summary>The command line end to end, in process. Console output is redirected, so these tests do not run in parallel.</summary>
[Collection(nameof(ConsoleCollection))]
public sealed class CliTests
{
    private static (int Code, string Out, string Error) Run(params string[] args)
    {
        var (oldOut, oldError) = (Console.Out, Console.Error);
        var (stdout, stderr) = (new StringWriter(), new StringWriter());
        Console.SetOut(stdout);
        Console.SetError(stderr);
        try
        {
            return (CliApp.Run(args), stdout.ToString(), stderr.ToString());
        }
        finally
        {
            Console.SetOut(oldOut);
            Console.SetError(oldError);
        }
    }

    [Theory]
    [InlineData("frobnicate")]
    [InlineData("generate", "--model", "x.gguf", "--prompt", "hi", "--bogus", "1")]
    [InlineData("generate", "--model", "x.gguf", "--prompt", "hi", "--max-tokens", "many")]
    [InlineData("generate", "--model", "x.gguf", "--prompt", "hi", "--prompt-token-ids", "1,2")]
    [InlineData("generate", "--model", "x.gguf", "--prompt-token-ids", "1,two")]
    [InlineData("generate", "--model", "/nonexistent/model.gguf", "--prompt", "hi")]
    [InlineData("bench", "--model", "x.gguf", "--threads", "0")]
    [InlineData("perplexity", "--model", "x.gguf")]
    public void Bad_command_lines_exit_2_with_one_line(params string[] args)
    {
        var (code, _, error) = Run(args);
        Assert.Equal(2, code);
        Assert.StartsWith("error: ", error);
        Assert.Single(error.TrimEnd().Split('\n'));
    }

    [Fact]
    public void Generate_json_reports_tokens_and_logprobs_from_token_ids()
    {
        using var temp = new TempDirectory();
        var path = LlamaForwardTests.WriteModel(new TinyGgufModel { Embedding = 64, FeedForward = 96, Vocabulary = 48 }, GgmlType.Q8_0, temp.File("tiny.gguf"));
        var (code, stdout, error) = Run("generate", "--model", path, "--prompt-token-ids", "1,5,9,13", "--max-tokens", "5",
            "--ignore-eos", "--output", "json", "--top-logprobs", "3", "--prompt-logprobs", "2", "--threads", "2");
        Assert.True(code == 0, error);
        using var json = JsonDocument.Parse(stdout);
        var root = json.RootElement;
        Assert.Equal([1, 5, 9, 13], root.GetProperty("prompt_token_ids").EnumerateArray().Select(e => e.GetInt32()));
        var tokens = root.GetProperty("token_ids").EnumerateArray().Select(e => e.GetInt32()).ToArray();
        Assert.Equal(5, tokens.Length);
        var top = root.GetProperty("top_logprobs").EnumerateArray().ToArray();
        Assert.Equal(5, top.Length);
        for (var i = 0; i < 5; i++)
        {
            var candidates = top[i].EnumerateArray().ToArray();
            Assert.Equal(3, candidates.Length);
            // Greedy by default: the generated token is the most likely candidate.
            Assert.Equal(tokens[i], candidates[0].GetProperty("id").GetInt32());
            Assert.True(candidates[0].GetProperty("logprob").GetDouble() >= candidates[1].GetProperty("logprob").GetDouble());
        }

        var prompt = root.GetProperty("prompt_logprobs").EnumerateArray().ToArray();
        Assert.Equal(3, prompt.Length);
        Assert.All(prompt, p => Assert.Equal(2, p.GetArrayLength()));
    }
}

[CollectionDefinition(nameof(ConsoleCollection), DisableParallelization = true)]
public sealed class ConsoleCollection;
