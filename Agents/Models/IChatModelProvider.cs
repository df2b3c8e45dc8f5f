using System.ClientModel;
using System.ClientModel.Primitives;
using System.Collections.Concurrent;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.Options;
using OpenAI;

namespace AspireAi.Agents.Models;

/// <summary>The raw chat client of one model id; the router and the pipeline are built over it.</summary>
public interface IChatModelProvider
{
    IChatClient GetChatClient(string model);
}

/// <summary>
/// Models behind an OpenAI-compatible endpoint (Inference, the gateway or any other) through Microsoft.Extensions.AI.OpenAI.
/// Its transport is an HttpClient from the factory, so <c>http://inference</c> resolves by service discovery and the
/// standard resilience handler applies (the SDK's own retries are off: two layers would multiply waits).
/// </summary>
internal sealed class OpenAiChatModelProvider(IHttpClientFactory httpClients, IOptions<AgentsOptions> options) : IChatModelProvider
{
    public const string HttpClientName = "inference";
    private readonly ConcurrentDictionary<string, IChatClient> _clients = new();
    private OpenAIClient? _client;

    public IChatClient GetChatClient(string model) => _clients.GetOrAdd(model, m => Client().GetChatClient(m).AsIChatClient());

    private OpenAIClient Client() => _client ??= new OpenAIClient(
        new ApiKeyCredential(options.Value.ModelApiKey ?? "aspireai-internal"),
        new OpenAIClientOptions
        {
            Endpoint = new Uri(options.Value.ModelEndpoint),
            Transport = new HttpClientPipelineTransport(httpClients.CreateClient(HttpClientName)),
            RetryPolicy = new ClientRetryPolicy(maxRetries: 0),
            NetworkTimeout = Timeout.InfiniteTimeSpan, // the resilience handler owns timeouts
        });
}
