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
    [InlineData("bench", "--model", "random:gpt-9")]
    [InlineData("bench", "--model", "random:stories15m:q9_9")]
    [InlineData("bench", "--model", "random:stories15m:q8_0:lots")]
    [InlineData("generate", "--model", "x.gguf", "--prompt", "hi", "--kv-cache-dtype", "fp8")]
    public void Bad_command_lines_exit_2_with_one_line(params string[] args)
    {
        var (code, _, error) = Run(args);
        Assert.Equal(2, code);
        Assert.StartsWith("error: ", error);
        Assert.Single(error.TrimEnd().Split('\n'));
    }

    [Theory]
    [InlineData("--help")]
    [InlineData("-h")]
    [InlineData("help")]
    public void Help_lists_every_verb_and_exits_0(string flag)
    {
        var (code, stdout, error) = Run(flag);
        Assert.Equal(0, code);
        Assert.Empty(error);
        Assert.All(["serve", "generate", "tokenize", "bench", "perplexity", "bench-serve"], verb => Assert.Contains($"  {verb} ", stdout));
    }

    [Theory]
    [InlineData(new[] { "generate", "--help" }, "--prompt VALUE", "--ignore-eos")]
    [InlineData(new[] { "bench", "--model", "x.gguf", "-h" }, "--gen-tokens VALUE", "--model VALUE")]
    [InlineData(new[] { "serve", "--help" }, "--kv-cache-dtype VALUE", "--enforce-eager")]
    [InlineData(new[] { "--model", "x.gguf", "--help" }, "--max-num-seqs VALUE", "--urls VALUE")]
    public void A_verbs_help_lists_its_flags_and_runs_nothing(string[] args, string flag, string other)
    {
        // Nothing is loaded: x.gguf does not exist, and asking for help is not an error.
        var (code, stdout, error) = Run(args);
        Assert.True(code == 0, error);
        Assert.StartsWith($"usage: inference {(args[0].StartsWith('-') ? "serve" : args[0])} ", stdout);
        Assert.Contains(flag, stdout);
        Assert.Contains(other, stdout);
    }

    [Theory]
    [InlineData("auto")]
    [InlineData("fp32")]
    public void Bench_reports_the_kv_cache_type_the_cpu_backend_stores_and_counts_its_bytes(string requested)
    {
        var (code, stdout, error) = Run("bench", "--model", "random:stories15m:q8_0:64", "--prompt-tokens", "8", "--gen-tokens", "4",
            "--repetitions", "1", "--threads", "2", "--output", "json", "--device", "cpu", "--kv-cache-dtype", requested);
        Assert.True(code == 0, error);
        using var json = JsonDocument.Parse(stdout);
        Assert.Equal("fp32", json.RootElement.GetProperty("kv_cache_dtype").GetString());
        // stories15M: 6 layers × keys and values × 288 wide × 4 bytes, over the average context of 8 + 4 / 2 tokens.
        Assert.Equal(6L * 2 * 288 * 4 * 10, json.RootElement.GetProperty("kv_bytes_per_token").GetInt64());
    }

    [Fact]
    public void Fp16_on_the_cpu_is_refused_naming_the_flag()
    {
        var (code, _, error) = Run("generate", "--model", "random:stories15m:q8_0:64", "--prompt-token-ids", "1,2", "--device", "cpu", "--kv-cache-dtype", "fp16");
        Assert.Equal(2, code);
        var last = error.TrimEnd().Split('\n')[^1];
        Assert.StartsWith("error: generate: Inference:KvCacheDtype (--kv-cache-dtype) fp16 is not supported here", last);
    }

    [Fact]
    public void Bench_runs_a_random_model_of_a_named_shape_without_a_file()
    {
        var (code, stdout, error) = Run("bench", "--model", "random:stories15m:q8_0:64", "--prompt-tokens", "8", "--gen-tokens", "4",
            "--repetitions", "1", "--threads", "2", "--output", "json");
        Assert.True(code == 0, error);
        using var json = JsonDocument.Parse(stdout);
        Assert.True(json.RootElement.GetProperty("prefill_tokens_per_s").GetDouble() > 0);
        Assert.True(json.RootElement.GetProperty("decode_tokens_per_s").GetDouble() > 0);
        Assert.Contains("random:stories15m", error);
    }

    [Fact]
    public void A_random_model_tokenizes_text_with_its_synthetic_vocabulary()
    {
        // <unk>, <s>, </s>, then the byte pieces from id 3: "▁hi" has no piece of its own, so it is bytes E2 96 81 'h' 'i'.
        var (code, stdout, error) = Run("generate", "--model", "random:stories15m:q8_0:64", "--prompt", "hi", "--max-tokens", "4",
            "--ignore-eos", "--output", "json", "--threads", "2");
        Assert.True(code == 0, error);
        using var json = JsonDocument.Parse(stdout);
        var root = json.RootElement;
        Assert.Equal([1, 3 + 0xE2, 3 + 0x96, 3 + 0x81, 3 + 'h', 3 + 'i'], root.GetProperty("prompt_token_ids").EnumerateArray().Select(e => e.GetInt32()));
        var ids = root.GetProperty("token_ids").EnumerateArray().Select(e => e.GetInt32()).ToArray();
        Assert.Equal(4, ids.Length);
        // Ids past the byte pieces decode to " w<id>"; the others to their byte or control text.
        var words = ids.Where(id => id >= 3 + 256).Select(id => $" w{id}");
        Assert.All(words, word => Assert.Contains(word, root.GetProperty("text").GetString()));
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

    [Fact]
    public void Perplexity_scores_chunks_as_llama_perplexity_does()
    {
        // llama-perplexity's definition, computed here with the float64 reference forward pass: the text tokenized once
        // with BOS in front (the model adds BOS), chunks of ctx tokens, each chunk's first token replaced by BOS, the
        // logits at positions ctx/2 .. ctx-2 scored against the next token.
        using var temp = new TempDirectory();
        var path = LlamaForwardTests.WriteModel(new TinyGgufModel { Embedding = 64, FeedForward = 96, Vocabulary = 48, Context = 64 }, GgmlType.F32, temp.File("tiny.gguf"));
        var random = new Random(7);
        var text = string.Concat(Enumerable.Range(0, 120).Select(_ => $"t{random.Next(3, 48)}"));
        var textFile = temp.File("text.txt");
        File.WriteAllText(textFile, text);
        const int ctx = 32;

        double nll = 0;
        var count = 0;
        using (var file = AspireAi.Inference.Models.Gguf.GgufFile.Open(path))
        {
            var tokenizer = AspireAi.Inference.Tokenization.Tokenizers.FromGguf(file);
            int[] tokens = [tokenizer.BosId, .. tokenizer.Encode(text, addSpecial: false)];
            Assert.True(tokens.Length >= 3 * ctx, $"{tokens.Length} tokens");
            for (var chunk = 0; chunk < tokens.Length / ctx; chunk++)
            {
                var reference = new ReferenceTransformer(file);
                for (var p = 0; p < ctx - 1; p++)
                {
                    var logits = reference.Next(p == 0 ? tokenizer.BosId : tokens[chunk * ctx + p]);
                    if (p >= ctx / 2)
                    {
                        var max = logits.Max();
                        nll += max + Math.Log(logits.Sum(l => Math.Exp(l - max))) - logits[tokens[chunk * ctx + p + 1]];
                        count++;
                    }
                }
            }
        }

        var (code, stdout, error) = Run("perplexity", "--model", path, "--file", textFile, "--ctx", $"{ctx}", "--threads", "2");
        Assert.True(code == 0, error);
        var final = stdout.Split('\n').Single(l => l.StartsWith("Final estimate: PPL = ", StringComparison.Ordinal));
        var fields = final.Split(' ');
        var ppl = double.Parse(fields[4], System.Globalization.CultureInfo.InvariantCulture);
        Assert.Equal("+/-", fields[5]);
        Assert.Equal($"{count}", fields[8]);
        // A random tiny model predicts almost uniformly (PPL ≈ 48 for 48 tokens), so the chunking shows only in the fourth
        // significant digit: F32 against float64 agrees far closer than that (the printed value has six digits).
        Assert.Equal(Math.Exp(nll / count), ppl, Math.Exp(nll / count) * 2e-5);
    }

    [Fact]
    public void Generate_over_two_cpu_ranks_gives_the_tokens_of_one()
    {
        var model = TestPaths.SharedModel("stories15M-f32.gguf");
        string[] common = ["generate", "--model", model, "--prompt-token-ids", "1,9038,2501,263,931", "--max-tokens", "8", "--output", "json", "--device", "cpu", "--threads", "2"];
        static int[] Tokens((int Code, string Out, string Error) run)
        {
            Assert.True(run.Code == 0, run.Error);
            using var json = JsonDocument.Parse(run.Out);
            return json.RootElement.GetProperty("token_ids").EnumerateArray().Select(e => e.GetInt32()).ToArray();
        }

        var whole = Tokens(Run(common));
        var split = Run([.. common, "--tensor-parallel-size", "2"]);
        Assert.Equal(whole, Tokens(split));
        Assert.Contains("backend: tensor-parallel 2 × cpu", split.Error);
    }

    [Theory]
    [InlineData("stories15M-f32.gguf", "0", 2, "--tensor-parallel-size must be an integer in [1, 64], not '0'")]
    [InlineData("stories15M-f32.gguf", "4", 1, "6 attention heads")]
    [InlineData("stories15M-q8_0.gguf", "2", 1, "'blk.0.attn_output.weight' (Q8_0, shape [288, 288]) cannot be split over tensor-parallel size 2")]
    public void A_tensor_parallel_size_the_model_cannot_take_is_one_clear_line(string file, string size, int code, string message)
    {
        var (exit, _, error) = Run("generate", "--model", TestPaths.SharedModel(file), "--prompt-token-ids", "1,2", "--device", "cpu", "--tensor-parallel-size", size);
        Assert.Equal(code, exit);
        // A load that fails at a tensor has already printed its progress line.
        var last = error.TrimEnd().Split('\n')[^1];
        Assert.StartsWith("error: ", last);
        Assert.Contains(message, last);
    }

    [Theory]
    [InlineData(new[] { "--enforce-eager" }, "--Inference:EnforceEager=true")]
    [InlineData(new[] { "--enforce-eager", "--max-num-seqs", "8" }, "--Inference:EnforceEager=true --Inference:MaxNumSeqs=8")]
    [InlineData(new[] { "--enforce-eager", "false" }, "--Inference:EnforceEager=false")]
    [InlineData(new[] { "--enforce-eager=false" }, "--Inference:EnforceEager=false")]
    public void Serve_takes_enforce_eager_alone_or_with_a_value(string[] args, string expected) =>
        Assert.Equal(expected, string.Join(' ', ServeCommand.TranslateFlags(args)));
}

[CollectionDefinition(nameof(ConsoleCollection), DisableParallelization = true)]
public sealed class ConsoleCollection;
