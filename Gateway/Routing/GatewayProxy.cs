using AspireAi.Gateway.Auth;
using AspireAi.ServiceDefaults;
using Yarp.ReverseProxy.Configuration;
using Yarp.ReverseProxy.Transforms;

namespace AspireAi.Gateway.Routing;

/// <summary>
/// The gateway's routing table (YARP): OpenAI model endpoints to inference, collections to retrieval, agents and
/// threads to agents. Destinations are Aspire service names resolved by service discovery.
/// </summary>
internal static class GatewayProxy
{
    private static readonly (string RouteId, string Path, string Cluster)[] Routes =
    [
        ("chat-completions", "/v1/chat/completions", "inference"),
        ("completions", "/v1/completions", "inference"),
        ("embeddings", "/v1/embeddings", "inference"),
        ("models", "/v1/models/{**rest}", "inference"),
        ("collections", "/v1/collections/{**rest}", "retrieval"),
        ("ingestions", "/v1/ingestions/{**rest}", "retrieval"),
        ("agents", "/v1/agents/{**rest}", "agents"),
        ("threads", "/v1/threads/{**rest}", "agents"),
    ];

    /// <summary>
    /// A completion streams for as long as the model writes: YARP's default 100 s idle timeout between bytes is fine
    /// for streams but cuts off a slow non-streaming completion on a CPU, so allow ten minutes of silence.
    /// </summary>
    private static readonly TimeSpan ActivityTimeout = TimeSpan.FromMinutes(10);

    public static IServiceCollection AddGatewayProxy(this IServiceCollection services)
    {
        var routes = Routes.Select(r => new RouteConfig
        {
            RouteId = r.RouteId,
            ClusterId = r.Cluster,
            Match = new RouteMatch { Path = r.Path },
            AuthorizationPolicy = "default",
        }).ToList();
        var clusters = Routes.Select(r => r.Cluster).Distinct().Select(name => new ClusterConfig
        {
            ClusterId = name,
            HttpRequest = new Yarp.ReverseProxy.Forwarder.ForwarderRequestConfig { ActivityTimeout = ActivityTimeout },
            Destinations = new Dictionary<string, DestinationConfig> { [name] = new() { Address = $"http://{name}" } },
        }).ToList();

        services.AddReverseProxy()
            .LoadFromMemory(routes, clusters)
            .AddServiceDiscoveryDestinationResolver()
            .AddTransforms(context => context.AddRequestTransform(transform =>
            {
                // A client can never choose its tenant: drop whatever it sent, then set what authentication decided.
                var headers = transform.ProxyRequest.Headers;
                headers.Remove(TenantHeaders.TenantHeader);
                headers.Remove(TenantHeaders.KeyIdHeader);
                headers.Remove("Authorization");
                var user = transform.HttpContext.User;
                if (user.FindFirst(GatewayClaims.Tenant)?.Value is { } tenant)
                {
                    headers.Add(TenantHeaders.TenantHeader, tenant);
                    headers.Add(TenantHeaders.KeyIdHeader, user.FindFirst(GatewayClaims.KeyId)?.Value);
                }

                return ValueTask.CompletedTask;
            }));
        return services;
    }

    public static void MapGatewayProxy(this WebApplication app) => app.MapReverseProxy();
}
