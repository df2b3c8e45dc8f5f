using System.ClientModel;
using AspireAi.Gateway.Tests.Support;
using Microsoft.Extensions.AI;
using OpenAI;

namespace AspireAi.Gateway.Tests;

/// <summary>
/// The official OpenAI .NET client and Microsoft.Extensions.AI's <see cref="IEmbeddingGenerator{TInput,TEmbedding}"/> pointed at
/// the gateway with an API key, against the real embedding model. (Chat, streaming, tools and JSON output follow once
/// Inference serves chat completions.)
/// </summary>
public sealed class OpenAiClientTests(TestStack stack)
{
    [Fact]
    public async Task The_openai_client_and_an_IEmbeddingGenerator_embed_through_the_gateway()
    {
        var (key, _) = await stack.Gateway.CreateKeyAsync("openai-client");
        var openAi = new OpenAIClient(new ApiKeyCredential(key), new OpenAIClientOptions { Endpoint = new Uri(stack.Gateway.Address + "/v1") });

        var direct = await openAi.GetEmbeddingClient(TestStack.EmbeddingModel).GenerateEmbeddingAsync("The gateway speaks OpenAI.");
        Assert.Equal(384, direct.Value.ToFloats().Length);

        IEmbeddingGenerator<string, Embedding<float>> generator = openAi.GetEmbeddingClient(TestStack.EmbeddingModel).AsIEmbeddingGenerator();
        var embeddings = await generator.GenerateAsync(["cats purr", "kittens purr", "stock markets fell"]);
        Assert.Equal(3, embeddings.Count);
        var similar = System.Numerics.Tensors.TensorPrimitives.CosineSimilarity(embeddings[0].Vector.Span, embeddings[1].Vector.Span);
        var unrelated = System.Numerics.Tensors.TensorPrimitives.CosineSimilarity(embeddings[0].Vector.Span, embeddings[2].Vector.Span);
        Assert.True(similar > unrelated, $"{similar} vs {unrelated}");
        Assert.True(embeddings.Usage?.InputTokenCount > 0);

        var wrongKey = new OpenAIClient(new ApiKeyCredential("sk-wrong"), new OpenAIClientOptions { Endpoint = new Uri(stack.Gateway.Address + "/v1") });
        var failure = await Assert.ThrowsAsync<ClientResultException>(() => wrongKey.GetEmbeddingClient(TestStack.EmbeddingModel).GenerateEmbeddingAsync("x"));
        Assert.Equal(401, failure.Status);
    }
}
