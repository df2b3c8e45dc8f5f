using System.Net;
using System.Net.Http.Json;
using System.Numerics.Tensors;
using System.Runtime.InteropServices;
using System.Text.Json;

namespace AspireAi.Retrieval.Tests;

/// <summary>Inference's <c>POST /v1/embeddings</c> (the real all-MiniLM-L6-v2 on ONNX Runtime) in OpenAI's shape.</summary>
public sealed class EmbeddingsEndpointTests(EmbeddingServer server)
{
    private readonly HttpClient _http = new() { BaseAddress = new Uri(server.BaseAddress) };

    [Fact]
    public async Task Returns_unit_vectors_that_place_a_question_near_its_answer()
    {
        var body = await Embed(new
        {
            model = "all-MiniLM-L6-v2",
            input = new[] { "How do I reset my password?", "To reset your password, open settings and choose Reset.", "The capital of France is Paris." },
        });
        Assert.Equal("list", body.GetProperty("object").GetString());
        Assert.Equal("all-MiniLM-L6-v2", body.GetProperty("model").GetString());
        var vectors = body.GetProperty("data").EnumerateArray().Select(d => d.GetProperty("embedding").EnumerateArray().Select(x => x.GetSingle()).ToArray()).ToArray();
        Assert.Equal([0, 1, 2], body.GetProperty("data").EnumerateArray().Select(d => d.GetProperty("index").GetInt32()));
        Assert.All(vectors, v => Assert.Equal(384, v.Length));
        Assert.All(vectors, v => Assert.Equal(1.0, TensorPrimitives.Norm(v), 3));
        var related = TensorPrimitives.Dot(vectors[0], vectors[1]);
        var unrelated = TensorPrimitives.Dot(vectors[0], vectors[2]);
        Assert.True(related > 0.6 && unrelated < 0.2, $"question·answer {related}, question·unrelated {unrelated}");
        Assert.True(body.GetProperty("usage").GetProperty("prompt_tokens").GetInt32() > 20);
    }

    [Fact]
    public async Task Batching_and_padding_do_not_change_a_vector_and_base64_carries_the_same_floats()
    {
        var texts = Enumerable.Range(0, 40).Select(i => i % 3 == 0 ? $"Short {i}." : $"A much longer input number {i} that pads the batch with many more tokens than the short ones.").ToArray();
        var batch = await Embed(new { model = "all-MiniLM-L6-v2", input = texts });
        var single = await Embed(new { model = "all-MiniLM-L6-v2", input = texts[3] });
        var encoded = await Embed(new { model = "all-MiniLM-L6-v2", input = texts[3], encoding_format = "base64" });

        var fromBatch = Floats(batch.GetProperty("data")[3].GetProperty("embedding"));
        var alone = Floats(single.GetProperty("data")[0].GetProperty("embedding"));
        var decoded = MemoryMarshal.Cast<byte, float>(Convert.FromBase64String(encoded.GetProperty("data")[0].GetProperty("embedding").GetString()!)).ToArray();
        Assert.True(TensorPrimitives.CosineSimilarity(fromBatch, alone) > 0.9999f);
        Assert.Equal(alone, decoded);
    }

    [Fact]
    public async Task Token_arrays_embed_like_the_text_they_encode()
    {
        // "Hello, world!" in all-MiniLM's uncased WordPiece vocabulary: hello , world !
        var tokens = await Embed(new { model = "all-MiniLM-L6-v2", input = new[] { new[] { 7592, 1010, 2088, 999 } } });
        var text = await Embed(new { model = "all-MiniLM-L6-v2", input = "Hello, world!" });
        Assert.Equal(Floats(text.GetProperty("data")[0].GetProperty("embedding")), Floats(tokens.GetProperty("data")[0].GetProperty("embedding")));
        Assert.Equal(6, text.GetProperty("usage").GetProperty("prompt_tokens").GetInt32()); // 4 + [CLS] + [SEP]
    }

    [Theory]
    [InlineData("""{"input":"x"}""", HttpStatusCode.BadRequest, "model")]
    [InlineData("""{"model":"all-MiniLM-L6-v2"}""", HttpStatusCode.BadRequest, "input")]
    [InlineData("""{"model":"no-such-model","input":"x"}""", HttpStatusCode.NotFound, "model")]
    [InlineData("""{"model":"all-MiniLM-L6-v2","input":["ok",""]}""", HttpStatusCode.BadRequest, "input[1]")]
    [InlineData("""{"model":"all-MiniLM-L6-v2","input":[]}""", HttpStatusCode.BadRequest, "input")]
    [InlineData("""{"model":"all-MiniLM-L6-v2","input":[[1,2],[3,-4]]}""", HttpStatusCode.BadRequest, "input[1][1]")]
    [InlineData("""{"model":"all-MiniLM-L6-v2","input":[99999]}""", HttpStatusCode.BadRequest, "input")]
    [InlineData("""{"model":"all-MiniLM-L6-v2","input":"x","encoding_format":"int8"}""", HttpStatusCode.BadRequest, "encoding_format")]
    [InlineData("""{"model":"all-MiniLM-L6-v2","input":"x","dimensions":128}""", HttpStatusCode.BadRequest, "dimensions")]
    public async Task Bad_requests_name_the_field(string json, HttpStatusCode status, string param)
    {
        var response = await _http.PostAsync("/v1/embeddings", new StringContent(json, System.Text.Encoding.UTF8, "application/json"));
        var error = await response.ErrorAsync(status, param);
        Assert.Equal(status == HttpStatusCode.NotFound ? "model_not_found" : null, error.GetProperty("code").GetString());
    }

    [Fact]
    public async Task The_native_dimension_may_be_named()
    {
        var body = await Embed(new { model = "all-MiniLM-L6-v2", input = "x", dimensions = 384 });
        Assert.Equal(384, body.GetProperty("data")[0].GetProperty("embedding").GetArrayLength());
    }

    private async Task<JsonElement> Embed(object request) =>
        await (await _http.PostAsJsonAsync("/v1/embeddings", request)).JsonAsync(HttpStatusCode.OK);

    private static float[] Floats(JsonElement array) => [.. array.EnumerateArray().Select(x => x.GetSingle())];
}
