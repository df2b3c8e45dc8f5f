using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using AspireAi.Inference.Tests.Serving;
using AspireAi.Inference.Tests.Support;

namespace AspireAi.Inference.Tests.TensorParallel;

/// <summary><c>serve --tensor-parallel-size 2 --device cpu</c>: the whole serving stack over two CPU ranks, against one.</summary>
public sealed class TensorParallelServingTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>
    /// Over 3 ranks the model has 6 heads (3 KV heads) so that they split, and its 32,000-token vocabulary does not: each
    /// rank computes 10,667 logits, the last one padding, which no request may see.
    /// </summary>
    [Theory]
    [InlineData(2)]
    [InlineData(3)]
    public async Task Ranks_serve_concurrent_requests_with_the_greedy_text_of_one(int size)
    {
        using var temp = new TempDirectory();
        var path = temp.File("tiny-real-vocab.gguf");
        RealVocabularyModel.Write(path, size == 3 ? RealVocabularyModel.Spec with { Heads = 6, KvHeads = 3, Embedding = 96 } : null);
        string[] prompts = ["Once upon a time", "The little dog", "She said hello to"];

        async Task<string[]> Serve(params string[] flags)
        {
            await using var host = await ServingHost.StartAsync(path, ["--device", "cpu", "--kv-cache-tokens", "512", .. flags]);
            Assert.Equal(flags.Length > 0, host.Model.BackendDescription.StartsWith($"tensor-parallel {size} × cpu", StringComparison.Ordinal));
            // Concurrent, so that the engine batches them into shared steps.
            var responses = await Task.WhenAll(prompts.Select(prompt => host.Http.PostAsJsonAsync("/v1/completions",
                new { model = host.Model.Id, prompt, max_tokens = 10, temperature = 0, ignore_eos = true }, Ct)));
            var texts = new List<string>();
            foreach (var response in responses)
            {
                Assert.Equal(HttpStatusCode.OK, response.StatusCode);
                var json = JsonNode.Parse(await response.Content.ReadAsStringAsync(Ct))!;
                Assert.Equal(10, json["usage"]!["completion_tokens"]!.GetValue<int>());
                texts.Add(json["choices"]![0]!["text"]!.GetValue<string>());
            }

            return [.. texts];
        }

        var whole = await Serve();
        var split = await Serve("--tensor-parallel-size", $"{size}");
        Assert.All(whole, text => Assert.NotEmpty(text));
        Assert.Equal(whole, split);
    }

    [Fact]
    public async Task A_size_below_one_or_that_does_not_divide_the_model_is_refused()
    {
        using var temp = new TempDirectory();
        var path = temp.File("tiny.gguf");
        new TinyGgufModel { Vocabulary = 64, Context = 128, Seed = 3 }.CreateWriter().WriteTo(path);

        var zero = await Assert.ThrowsAnyAsync<ArgumentException>(() => ServingHost.StartAsync(path, "--device", "cpu", "--tensor-parallel-size", "0"));
        Assert.Contains("Inference:TensorParallelSize (--tensor-parallel-size) must be at least 1, not 0", zero.Message);
        // The tiny model has 4 attention heads.
        var three = await Assert.ThrowsAnyAsync<ArgumentException>(() => ServingHost.StartAsync(path, "--device", "cpu", "--tensor-parallel-size", "3"));
        Assert.Contains("4 attention heads", three.Message);
        Assert.Contains("tensor-parallel size 3", three.Message);
    }
}
