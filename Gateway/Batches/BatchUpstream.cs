using AspireAi.Gateway.Auth;
using AspireAi.Gateway.Replicas;
using AspireAi.Gateway.Routing;
using AspireAi.ServiceDefaults;

namespace AspireAi.Gateway.Batches;

/// <summary>
/// The gateway's calls to one inference replica for the Batch API, made for the authenticated caller: each request is built
/// here (nothing of the client's request is copied but what the handler puts in), with <c>X-AspireAi-Tenant</c> and
/// <c>X-AspireAi-Key-Id</c> set from the caller — the tenant Inference stores with each file and batch and filters on.
/// The replica's circuit is consulted and told of the outcome, and every answer teaches the directory the replica's tag.
/// </summary>
/// <remarks>
/// These calls go through <see cref="HttpClient"/> rather than YARP's forwarder because the gateway reads what it forwards:
/// list pages to merge, batch objects whose <c>usage</c> it charges, the replica tag header it keeps to itself.
/// </remarks>
internal sealed class BatchUpstream(UpstreamClient upstream, BatchReplicaDirectory directory)
{
    /// <summary>
    /// Sends <paramref name="request"/> (its URI relative to the replica) to <paramref name="replica"/>; null when the replica
    /// could not be reached (circuit open, no connection, broken before the response headers).
    /// </summary>
    public async Task<HttpResponseMessage?> SendAsync(Replica replica, Caller caller, HttpRequestMessage request, CancellationToken ct)
    {
        if (!replica.Breaker.TryAcquire())
        {
            request.Dispose();
            return null;
        }

        request.RequestUri = new Uri(new Uri(replica.Address), request.RequestUri!);
        request.Headers.TryAddWithoutValidation(TenantHeaders.TenantHeader, caller.Tenant);
        request.Headers.TryAddWithoutValidation(TenantHeaders.KeyIdHeader, caller.KeyId);
        replica.Begin();
        try
        {
            var response = await upstream.Http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, ct);
            directory.Learn(replica, response);
            replica.Breaker.OnSuccess();
            return response;
        }
        catch (Exception ex) when (ex is HttpRequestException || (ex is OperationCanceledException && !ct.IsCancellationRequested))
        {
            replica.Breaker.OnFailure();
            return null;
        }
        finally
        {
            replica.End();
            request.Dispose();
        }
    }

    /// <summary>Writes an upstream answer to the client: status, content headers and body, streamed.</summary>
    public static async Task CopyAsync(HttpResponseMessage response, HttpContext context)
    {
        context.Response.StatusCode = (int)response.StatusCode;
        foreach (var (name, values) in response.Content.Headers)
        {
            context.Response.Headers[name] = values.ToArray();
        }

        await response.Content.CopyToAsync(context.Response.Body, context.RequestAborted);
    }

    /// <summary>Writes a body the gateway has read already, with the upstream's status and content headers.</summary>
    public static async Task WriteAsync(HttpResponseMessage response, byte[] body, HttpContext context)
    {
        context.Response.StatusCode = (int)response.StatusCode;
        foreach (var (name, values) in response.Content.Headers)
        {
            context.Response.Headers[name] = values.ToArray();
        }

        context.Response.ContentLength = body.Length;
        await context.Response.Body.WriteAsync(body, context.RequestAborted);
    }
}
