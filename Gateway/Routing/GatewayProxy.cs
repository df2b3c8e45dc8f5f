using System.Diagnostics;
using AspireAi.Gateway.Auth;
using AspireAi.Gateway.Limits;
using AspireAi.Gateway.Usage;
using Microsoft.Extensions.Options;
using Yarp.ReverseProxy.Configuration;
using Yarp.ReverseProxy.Model;
using Yarp.ReverseProxy.Transforms;

namespace AspireAi.Gateway.Routing;

/// <summary>
/// The routes that need no model routing, proxied by YARP as configured: collections and ingestions to Retrieval, agents
/// and threads to Agents. Destinations are service names resolved by service discovery (every replica YARP balances). Each
/// request passes the key's scope check and request rate limit and is recorded in usage.
/// </summary>
internal static class GatewayProxy
{
    private static readonly (string RouteId, string Path, string Cluster)[] Routes =
    [
        ("collections", "/v1/collections/{**rest}", "retrieval"),
        ("ingestions", "/v1/ingestions/{**rest}", "retrieval"),
        ("agents", "/v1/agents/{**rest}", "agents"),
        ("threads", "/v1/threads/{**rest}", "agents"),
    ];

    public static IServiceCollection AddGatewayProxy(this IServiceCollection services, GatewayOptions options)
    {
        var routes = Routes.Select(r => new RouteConfig
        {
            RouteId = r.RouteId,
            ClusterId = r.Cluster,
            Match = new RouteMatch { Path = r.Path },
            AuthorizationPolicy = "default",
        }).ToList();
        var addresses = new Dictionary<string, string> { ["retrieval"] = options.Retrieval, ["agents"] = options.Agents };
        var clusters = addresses.Select(c => new ClusterConfig
        {
            ClusterId = c.Key,
            HttpRequest = new Yarp.ReverseProxy.Forwarder.ForwarderRequestConfig
            {
                ActivityTimeout = TimeSpan.FromSeconds(options.Replicas.ActivityTimeoutSeconds),
            },
            LoadBalancingPolicy = "LeastRequests",
            Destinations = new Dictionary<string, DestinationConfig> { [c.Key] = new() { Address = c.Value } },
        }).ToList();

        services.AddReverseProxy()
            .LoadFromMemory(routes, clusters)
            .AddServiceDiscoveryDestinationResolver()
            .AddTransforms(context => context.AddRequestTransform(transform =>
            {
                TenantTransformer.SetTenantHeaders(transform.HttpContext, transform.ProxyRequest.Headers);
                return ValueTask.CompletedTask;
            }));
        return services;
    }

    public static void MapGatewayProxy(this WebApplication app) => app.MapReverseProxy(pipeline =>
    {
        pipeline.Use(GateAsync);
        pipeline.UseSessionAffinity();
        pipeline.UseLoadBalancing();
        pipeline.UsePassiveHealthChecks();
    });

    private static async Task GateAsync(HttpContext context, Func<Task> next)
    {
        var started = Stopwatch.GetTimestamp();
        var caller = Caller.Of(context);
        var scope = context.GetReverseProxyFeature().Route.Config.ClusterId ?? "";
        try
        {
            if (!caller.HasScope(scope))
            {
                await OpenAiError.WriteAsync(context, 403, $"This key lacks the '{scope}' scope needed for {context.Request.Path}.", code: "insufficient_scope");
                return;
            }

            var decision = await context.RequestServices.GetRequiredService<ILimiter>().AdmitAsync(caller);
            RateLimitHeaders.Write(context.Response, decision);
            if (!decision.Allowed)
            {
                context.RequestServices.GetRequiredService<GatewayMetrics>().RateLimited(decision.Refused.ToString().ToLowerInvariant());
                await RateLimitHeaders.Refusal(decision).ExecuteAsync(context);
                return;
            }

            await next();
        }
        finally
        {
            context.RequestServices.GetRequiredService<UsageWriter>().Record(new UsageRecord(DateTimeOffset.UtcNow, caller.KeyId, caller.Tenant,
                context.Request.Path.Value ?? "", null, 0, 0, Stopwatch.GetElapsedTime(started).TotalMilliseconds, context.Response.StatusCode, null));
        }
    }
}
