using AspireAi.Gateway.Routing;
using Microsoft.Extensions.Options;
using Yarp.ReverseProxy.Forwarder;

namespace AspireAi.Gateway.Replicas;

/// <summary>How forwarding to a service ended.</summary>
internal enum ForwardResult
{
    /// <summary>An upstream answer (or YARP's error status) was written to the client.</summary>
    Forwarded,

    /// <summary>No replica could take the request; nothing was written, so the caller may try a fallback or answer itself.</summary>
    Unavailable,
}

/// <summary>
/// Sends one buffered request to a replica of a service with YARP's forwarder (response streamed through unbuffered) and
/// retries it on another replica while nothing has reached the client: when no connection could be made or it broke before
/// the response headers, or the replica answered 503 (refused before doing any work). After the first byte a failure is
/// the client's to see — a completion half-streamed cannot be replayed elsewhere without repeating tokens.
/// </summary>
internal sealed class ReplicaForwarder(IHttpForwarder forwarder, UpstreamClient upstream, ReplicaRegistry registry,
    IOptions<GatewayOptions> options, GatewayMetrics metrics, ILogger<ReplicaForwarder> logger)
{
    private readonly ReplicaOptions _options = options.Value.Replicas;

    /// <param name="fallbackFollows">Whether the caller has another target: then even the last replica's 503 is held back.</param>
    public async Task<ForwardResult> ForwardAsync(HttpContext context, string service, ReadOnlyMemory<byte> body, ulong? affinity,
        bool fallbackFollows)
    {
        var replicas = await registry.For(service).GetAsync(context.RequestAborted);
        var tried = new List<Replica>(2);
        while (ReplicaSelector.Select(replicas, affinity, _options.AffinitySlack, tried) is { } replica)
        {
            tried.Add(replica);
            if (!replica.Breaker.TryAcquire())
            {
                continue;
            }

            var another = replicas.Any(r => !tried.Contains(r) && !r.Breaker.IsOpen);
            var transformer = new AttemptTransformer(refuse503: another || fallbackFollows);
            context.Request.Body = new ReadOnlyMemoryStream(body);
            context.Request.ContentLength = body.Length;

            replica.Begin();
            ForwarderError error;
            try
            {
                error = await forwarder.SendAsync(context, replica.Address, upstream.Invoker, upstream.RequestConfig, transformer);
            }
            finally
            {
                replica.End();
            }

            if (error == ForwarderError.None && !transformer.Refused)
            {
                replica.Breaker.OnSuccess();
                return ForwardResult.Forwarded;
            }

            var beforeFirstByte = !context.Response.HasStarted && (transformer.Refused || error is ForwarderError.Request);
            if (error is ForwarderError.Request or ForwarderError.RequestTimedOut || transformer.Refused)
            {
                replica.Breaker.OnFailure();
            }

            if (!beforeFirstByte)
            {
                return ForwardResult.Forwarded; // YARP wrote its 502/504, or the stream broke mid-way: the client sees it
            }

            logger.LogInformation("Replica {Replica} of {Service} failed before the first byte ({Error}); trying another",
                replica.Address, service, transformer.Refused ? "503" : error.ToString());
            metrics.Retried(service);
            context.Response.Clear();
            context.Features.Set<IForwarderErrorFeature>(null);
        }

        return ForwardResult.Unavailable;
    }

    /// <summary>Forwards like <see cref="TenantTransformer"/>; holds back a 503 when another replica may take the request.</summary>
    private sealed class AttemptTransformer(bool refuse503) : TenantTransformer
    {
        public bool Refused { get; private set; }

        public override ValueTask<bool> TransformResponseAsync(HttpContext httpContext, HttpResponseMessage? proxyResponse,
            CancellationToken cancellationToken)
        {
            if (refuse503 && proxyResponse?.StatusCode == System.Net.HttpStatusCode.ServiceUnavailable)
            {
                Refused = true;
                return ValueTask.FromResult(false);
            }

            return base.TransformResponseAsync(httpContext, proxyResponse, cancellationToken);
        }
    }

    /// <summary>A request body already in memory, readable once per attempt.</summary>
    private sealed class ReadOnlyMemoryStream(ReadOnlyMemory<byte> data) : Stream
    {
        private int _position;

        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

        public override int Read(Span<byte> buffer)
        {
            var n = Math.Min(buffer.Length, data.Length - _position);
            data.Span.Slice(_position, n).CopyTo(buffer);
            _position += n;
            return n;
        }

        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
            ValueTask.FromResult(Read(buffer.Span));

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            Task.FromResult(Read(buffer.AsSpan(offset, count)));

        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => data.Length;
        public override long Position { get => _position; set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
