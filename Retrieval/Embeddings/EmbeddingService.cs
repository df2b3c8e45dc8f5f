using System.ClientModel;
using System.ClientModel.Primitives;
using System.Collections.Concurrent;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.Options;
using OpenAI;

namespace AspireAi.Retrieval.Embeddings;

/// <summary>
/// Embeddings from Inference's <c>/v1/embeddings</c> through <c>IEmbeddingGenerator</c>: Microsoft.Extensions.AI.OpenAI's
/// generator over the OpenAI SDK, whose transport is an <c>HttpClient</c> from the factory, so that service discovery
/// resolves <c>http://inference</c> and the standard resilience handler retries. One generator per model id.
/// </summary>
internal sealed class EmbeddingService(IHttpClientFactory httpClients, IOptions<RetrievalOptions> options, ILoggerFactory loggers)
{
    /// <summary>The HttpClient name: its resilience options are <c>inference-standard</c>.</summary>
    public const string HttpClientName = "inference";

    private readonly ConcurrentDictionary<string, IEmbeddingGenerator<string, Embedding<float>>> _generators = new();

    /// <summary>The generator for <paramref name="model"/>.</summary>
    public IEmbeddingGenerator<string, Embedding<float>> Generator(string model) => _generators.GetOrAdd(model, Create);

    /// <summary>Embeds <paramref name="texts"/> in requests of <see cref="RetrievalOptions.EmbeddingBatchSize"/>.</summary>
    /// <exception cref="EmbeddingUnavailableException">Inference could not be reached or answered with a server error.</exception>
    /// <exception cref="EmbeddingRejectedException">Inference refused the request (unknown model, bad input).</exception>
    public async Task<float[][]> EmbedAsync(string model, IReadOnlyList<string> texts, CancellationToken cancellationToken)
    {
        var vectors = new float[texts.Count][];
        var batchSize = options.Value.EmbeddingBatchSize;
        for (var start = 0; start < texts.Count; start += batchSize)
        {
            var batch = texts.Skip(start).Take(batchSize).ToList();
            var embeddings = await GenerateAsync(model, batch, cancellationToken);
            for (var i = 0; i < embeddings.Count; i++)
            {
                vectors[start + i] = embeddings[i].Vector.ToArray();
            }
        }

        return vectors;
    }

    private async Task<GeneratedEmbeddings<Embedding<float>>> GenerateAsync(string model, List<string> batch, CancellationToken cancellationToken)
    {
        try
        {
            var embeddings = await Generator(model).GenerateAsync(batch, cancellationToken: cancellationToken);
            return embeddings.Count == batch.Count
                ? embeddings
                : throw new EmbeddingUnavailableException($"The embedding service returned {embeddings.Count} vectors for {batch.Count} inputs.");
        }
        catch (ClientResultException ex) when (ex.Status is 0 or 408 or 429 or >= 500)
        {
            throw new EmbeddingUnavailableException(ex.Status == 0
                ? $"The embedding service at {options.Value.EmbeddingEndpoint} could not be reached: {ex.InnerException?.Message ?? ex.Message}"
                : $"The embedding service answered {ex.Status}: {ex.Message}", ex);
        }
        catch (ClientResultException ex)
        {
            throw new EmbeddingRejectedException($"The embedding service refused the request for model '{model}' ({ex.Status}): {ex.Message}", ex);
        }
        catch (HttpRequestException ex)
        {
            throw new EmbeddingUnavailableException($"The embedding service at {options.Value.EmbeddingEndpoint} could not be reached: {ex.Message}", ex);
        }
        catch (Polly.ExecutionRejectedException ex)
        {
            // The resilience pipeline gave up: its total timeout passed or its circuit breaker is open.
            throw new EmbeddingUnavailableException($"The embedding service at {options.Value.EmbeddingEndpoint} is unavailable: {ex.Message}", ex);
        }
        catch (Exception ex) when (ex is TaskCanceledException or TimeoutException && !cancellationToken.IsCancellationRequested)
        {
            throw new EmbeddingUnavailableException($"The embedding service at {options.Value.EmbeddingEndpoint} timed out.", ex);
        }
    }

    private IEmbeddingGenerator<string, Embedding<float>> Create(string model)
    {
        var client = new OpenAIClient(new ApiKeyCredential("aspireai-internal"), new OpenAIClientOptions
        {
            Endpoint = new Uri(options.Value.EmbeddingEndpoint),
            Transport = new HttpClientPipelineTransport(httpClients.CreateClient(HttpClientName)),
            // The HttpClient's resilience handler already retries what is safe to retry; a second layer would multiply waits.
            RetryPolicy = new ClientRetryPolicy(maxRetries: 0),
        });
        return client.GetEmbeddingClient(model).AsIEmbeddingGenerator()
            .AsBuilder()
            .UseOpenTelemetry(loggers)
            .Build();
    }
}

/// <summary>The embedding service is down or overloaded: answer 503 with Retry-After; a job waits and resumes.</summary>
internal sealed class EmbeddingUnavailableException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>The embedding service refused the input (e.g. the collection names a model it does not serve).</summary>
internal sealed class EmbeddingRejectedException(string message, Exception? inner = null) : Exception(message, inner);
