using System.Diagnostics;
using System.Net;
using Microsoft.Extensions.Options;
using Yarp.ReverseProxy.Forwarder;

namespace AspireAi.Gateway.Routing;

/// <summary>
/// The one connection pool to upstream replicas, configured as YARP recommends for a forwarder (no proxy, redirects,
/// cookies or decompression: the gateway passes bytes through). It deliberately has none of the service defaults'
/// resilience handlers: the gateway retries on its own terms (another replica, only before the first byte) and a second
/// retry layer underneath would multiply attempts.
/// </summary>
internal sealed class UpstreamClient : IDisposable
{
    public UpstreamClient(IOptions<GatewayOptions> options)
    {
        var replicas = options.Value.Replicas;
        var handler = new SocketsHttpHandler
        {
            UseProxy = false,
            AllowAutoRedirect = false,
            AutomaticDecompression = DecompressionMethods.None,
            UseCookies = false,
            EnableMultipleHttp2Connections = true,
            ConnectTimeout = TimeSpan.FromSeconds(replicas.ConnectTimeoutSeconds),
            ActivityHeadersPropagator = new ReverseProxyPropagator(DistributedContextPropagator.Current),
        };
        Invoker = new HttpMessageInvoker(handler, disposeHandler: true);
        Http = new HttpClient(handler, disposeHandler: false) { Timeout = TimeSpan.FromSeconds(30) };
        RequestConfig = new ForwarderRequestConfig { ActivityTimeout = TimeSpan.FromSeconds(replicas.ActivityTimeoutSeconds) };
    }

    public HttpMessageInvoker Invoker { get; }

    /// <summary>For the gateway's own calls upstream (model lists, embeddings for the semantic cache).</summary>
    public HttpClient Http { get; }

    public ForwarderRequestConfig RequestConfig { get; }

    public void Dispose()
    {
        Http.Dispose();
        Invoker.Dispose();
    }
}
