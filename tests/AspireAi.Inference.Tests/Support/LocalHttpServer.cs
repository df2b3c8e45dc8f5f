using System.Collections.Concurrent;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace AspireAi.Inference.Tests.Support;

/// <summary>
/// A real HTTP server (Kestrel) on a free loopback port, for testing downloads without the network: every request goes to
/// <see cref="Handler"/> and is recorded (path and Range header).
/// </summary>
public sealed class LocalHttpServer : IAsyncDisposable
{
    private readonly WebApplication _app;

    private LocalHttpServer(WebApplication app) => _app = app;

    public Func<HttpContext, Task> Handler { get; set; } = context =>
    {
        context.Response.StatusCode = 404;
        return Task.CompletedTask;
    };

    public ConcurrentQueue<(string Path, string? Range)> Requests { get; } = new();

    public Uri BaseAddress { get; private set; } = null!;

    public static async Task<LocalHttpServer> StartAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Logging.ClearProviders();
        var app = builder.Build();
        var server = new LocalHttpServer(app);
        app.Run(context =>
        {
            server.Requests.Enqueue((context.Request.Path.Value ?? "", context.Request.Headers.Range.FirstOrDefault()));
            return server.Handler(context);
        });
        await app.StartAsync();
        server.BaseAddress = new Uri(app.Urls.First().TrimEnd('/') + "/");
        return server;
    }

    /// <summary>Serves <paramref name="content"/> honouring <c>Range: bytes=N-</c> with 206 (and 416 past the end).</summary>
    public static async Task ServeWithRanges(HttpContext context, byte[] content, int? dropAfter = null)
    {
        var from = 0L;
        var range = context.Request.Headers.Range.FirstOrDefault();
        if (range is not null && range.StartsWith("bytes=", StringComparison.Ordinal) && range.EndsWith('-'))
        {
            from = long.Parse(range["bytes=".Length..^1]);
            if (from >= content.Length)
            {
                context.Response.StatusCode = 416;
                context.Response.Headers.ContentRange = $"bytes */{content.Length}";
                return;
            }

            context.Response.StatusCode = 206;
            context.Response.Headers.ContentRange = $"bytes {from}-{content.Length - 1}/{content.Length}";
        }

        context.Response.ContentLength = content.Length - from;
        var end = dropAfter is { } d ? Math.Min(content.Length, from + d) : content.Length;
        await context.Response.Body.WriteAsync(content.AsMemory((int)from, (int)(end - from)));
        if (end < content.Length)
        {
            // Cut the connection mid-body, as a network failure would.
            await context.Response.Body.FlushAsync();
            context.Abort();
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}
