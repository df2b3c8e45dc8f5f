using System.Runtime.InteropServices;
using System.Text.Json;
using Microsoft.Extensions.Options;

namespace AspireAi.Inference.Embeddings;

/// <summary><c>POST /v1/embeddings</c> in OpenAI's shape, served by the models of <see cref="EmbeddingModelCatalog"/>.</summary>
public static class EmbeddingEndpoints
{
    /// <summary>Registers the embedding models (loaded on first use) and their batcher.</summary>
    public static TBuilder AddEmbeddings<TBuilder>(this TBuilder builder) where TBuilder : IHostApplicationBuilder
    {
        builder.Services.AddOptions<EmbeddingOptions>().Bind(builder.Configuration.GetSection(EmbeddingOptions.Section));
        builder.Services.AddSingleton<EmbeddingModelCatalog>();
        builder.Services.AddSingleton(sp => new EmbeddingBatcher(sp.GetRequiredService<IOptions<EmbeddingOptions>>().Value.BatchSize));
        return builder;
    }

    /// <summary>Maps <c>POST /v1/embeddings</c>.</summary>
    public static IEndpointRouteBuilder MapEmbeddingEndpoints(this IEndpointRouteBuilder app)
    {
        app.MapPost("/v1/embeddings", async (JsonElement body, EmbeddingModelCatalog catalog, EmbeddingBatcher batcher,
            IOptions<EmbeddingOptions> options, CancellationToken ct) =>
        {
            var request = EmbeddingRequest.Parse(body, options.Value.MaxInputs, out var error, out var param);
            if (request is null)
            {
                return OpenAiError.Result(400, error!, param);
            }

            if (!catalog.TryGet(request.Model, out var model))
            {
                var served = catalog.ModelIds.Count == 0 ? "none is served" : "served: " + string.Join(", ", catalog.ModelIds);
                return OpenAiError.Result(404, $"The embedding model '{request.Model}' does not exist ({served}).", "model", "model_not_found");
            }

            var dimensions = request.Dimensions ?? model.Dimensions;
            if (dimensions != model.Dimensions && !(model.SupportsShorterDimensions && dimensions < model.Dimensions))
            {
                return OpenAiError.Result(400, model.SupportsShorterDimensions
                        ? $"'dimensions' must be between 1 and {model.Dimensions} for '{model.Id}'."
                        : $"'{model.Id}' produces {model.Dimensions}-dimensional vectors and was not trained for shorter ones, so 'dimensions' can only be {model.Dimensions}.",
                    "dimensions");
            }

            var tokens = new int[request.Inputs.Count][];
            for (var i = 0; i < tokens.Length; i++)
            {
                var input = request.Inputs[i];
                tokens[i] = input.TokenIds ?? model.Tokenize(input.Text!);
                if (input.TokenIds is { } ids && Array.FindIndex(ids, id => id >= model.VocabularySize) is >= 0 and var at)
                {
                    var bad = ids[at];
                    return OpenAiError.Result(400, $"Token id {bad} in input {i} is outside the vocabulary of '{model.Id}' ({model.VocabularySize} tokens).",
                        request.Inputs.Count == 1 ? "input" : $"input[{i}]");
                }
            }

            var vectors = await batcher.EmbedAsync(model, tokens, ct);
            var data = new object[vectors.Length];
            for (var i = 0; i < vectors.Length; i++)
            {
                var vector = vectors[i].AsSpan(0, dimensions);
                if (dimensions != model.Dimensions)
                {
                    OnnxSentenceEncoder.Normalize(vector); // a Matryoshka prefix, made unit length again
                }

                object embedding = request.Base64 ? Convert.ToBase64String(MemoryMarshal.AsBytes(vector)) : vector.ToArray();
                data[i] = new { @object = "embedding", index = i, embedding };
            }

            // Tokens processed, [CLS] and [SEP] included, after truncation to the model's window.
            var promptTokens = tokens.Sum(t => Math.Min(t.Length, options.Value.MaxTokens - 2) + 2);
            return Results.Json(new
            {
                @object = "list",
                data,
                model = model.Id,
                usage = new { prompt_tokens = promptTokens, total_tokens = promptTokens },
            });
        });
        return app;
    }
}
