using AspireAi.Gateway.Auth;
using AspireAi.ServiceDefaults;
using Yarp.ReverseProxy.Forwarder;

namespace AspireAi.Gateway.Routing;

/// <summary>
/// Forwards a request as YARP does by default, except that a client can never choose its tenant: whatever
/// <c>X-AspireAi-*</c> headers it sent are dropped and set again from the authenticated caller; its credentials stay here.
/// </summary>
internal class TenantTransformer : HttpTransformer
{
    public static readonly TenantTransformer Instance = new();

    public override async ValueTask TransformRequestAsync(HttpContext httpContext, HttpRequestMessage proxyRequest,
        string destinationPrefix, CancellationToken cancellationToken)
    {
        await base.TransformRequestAsync(httpContext, proxyRequest, destinationPrefix, cancellationToken);
        SetTenantHeaders(httpContext, proxyRequest.Headers);
    }

    public static void SetTenantHeaders(HttpContext context, System.Net.Http.Headers.HttpRequestHeaders headers)
    {
        headers.Remove(TenantHeaders.TenantHeader);
        headers.Remove(TenantHeaders.KeyIdHeader);
        headers.Remove("Authorization");
        if (context.Features.Get<Caller>() is { } caller)
        {
            headers.TryAddWithoutValidation(TenantHeaders.TenantHeader, caller.Tenant);
            headers.TryAddWithoutValidation(TenantHeaders.KeyIdHeader, caller.KeyId);
        }
    }
}
