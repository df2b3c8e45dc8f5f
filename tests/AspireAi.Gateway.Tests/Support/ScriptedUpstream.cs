using System.Collections.Concurrent;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace AspireAi.Gateway.Tests.Support;

/// <summary>What a <see cref="ScriptedUpstream"/> does with the next chat completion requests.</summary>
public enum UpstreamBehavior
{
    Answer,
    /// <summary>Drops the connection before sending anything (a replica that died).</summary>
    AbortBeforeHeaders,
    /// <summary>Answers 503 (a replica whose queue is full: it refused before doing any work).</summary>
    Unavailable,
}

/// <summary>
/// A scripted chat-completions replica, OpenAI's wire format exactly (JSON answers, SSE chunks, the usage chunk, [DONE]).
/// It is a fake, allowed here only because these tests must control exactly what the upstream sends and when: chunk timing
/// for unbuffered streaming, failures before the first byte, which replica answered (for affinity) — and because
/// Inference's chat endpoint does not exist yet. Everything else is tested against the real Inference app.
/// </summary>
public sealed class ScriptedUpstream : IAsyncDisposable
{
    public const string Model = "scripted-chat";
    private WebApplication? _app;
    private int _answered;

    public ScriptedUpstream(string name) => Name = name;

    public string Name { get; }

    /// <summary>Where it listens, once started: the loopback port the kernel gave at bind time (port 0).</summary>
    public string Address { get; private set; } = "";

    public UpstreamBehavior Behavior { get; set; }

    public int Chunks { get; set; } = 5;

    public TimeSpan ChunkDelay { get; set; } = TimeSpan.FromMilliseconds(5);

    /// <summary>How long <c>GET /v1/models</c> takes to answer (a deployment still warming up).</summary>
    public TimeSpan ModelsDelay { get; set; }

    /// <summary>When set, a stream sends its first chunk and then waits for this before the rest.</summary>
    public TaskCompletionSource? HoldAfterFirstChunk { get; set; }

    /// <summary>Chat completion requests that reached this replica: their bodies and headers.</summary>
    public ConcurrentQueue<(JsonElement Body, IHeaderDictionary Headers)> Requests { get; } = new();

    public int Answered => Volatile.Read(ref _answered);

    /// <summary>Whether a request whose text contains <paramref name="marker"/> reached this replica.</summary>
    public bool Saw(string marker) => Requests.Any(r => r.Body.GetRawText().Contains(marker, StringComparison.Ordinal));

    /// <summary>Chat completion requests that arrived, whatever the behaviour did with them.</summary>
    public int Received => Volatile.Read(ref _received);

    private int _received;

    public async Task<ScriptedUpstream> StartAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        _app = builder.Build();
        _app.MapGet("/v1/models", async () =>
        {
            await Task.Delay(ModelsDelay);
            return Results.Json(new
            {
                @object = "list",
                data = new[] { new { id = Model, @object = "model", created = 1, owned_by = "scripted" } },
            });
        });
        _app.MapPost("/v1/chat/completions", AnswerAsync);
        // Answers as the Agents service would for an agents deployment made of this replica.
        _app.MapGet("/v1/agents", () => Results.Json(new { @object = "list", data = new[] { new { name = "researcher", model = Model } } }));
        await _app.StartAsync();
        Address = _app.Urls.First().TrimEnd('/');
        return this;
    }

    public Task StopAsync() => _app is null ? Task.CompletedTask : _app.StopAsync();

    public async ValueTask DisposeAsync()
    {
        if (_app is not null)
        {
            await _app.DisposeAsync();
        }
    }

    private async Task AnswerAsync(HttpContext context)
    {
        Interlocked.Increment(ref _received);
        if (Behavior == UpstreamBehavior.AbortBeforeHeaders)
        {
            context.Abort();
            return;
        }

        if (Behavior == UpstreamBehavior.Unavailable)
        {
            context.Response.StatusCode = 503;
            await context.Response.WriteAsJsonAsync(new { error = new { message = "queue full", type = "service_unavailable_error" } });
            return;
        }

        using var document = await JsonDocument.ParseAsync(context.Request.Body);
        var body = document.RootElement.Clone();
        Requests.Enqueue((body, new HeaderDictionary(context.Request.Headers.ToDictionary(h => h.Key, h => h.Value))));
        var n = Interlocked.Increment(ref _answered);
        var id = $"chatcmpl-{Name}-{n}";
        var promptTokens = body.GetProperty("messages").EnumerateArray()
            .Sum(m => m.TryGetProperty("content", out var c) && c.ValueKind == JsonValueKind.String ? c.GetString()!.Split(' ').Length : 0);
        var usage = new { prompt_tokens = promptTokens, completion_tokens = Chunks, total_tokens = promptTokens + Chunks };

        if (!(body.TryGetProperty("stream", out var stream) && stream.ValueKind == JsonValueKind.True))
        {
            await context.Response.WriteAsJsonAsync(new
            {
                id, @object = "chat.completion", created = 1, model = Model, system_fingerprint = Name,
                choices = new[] { new { index = 0, message = new { role = "assistant", content = Content(Chunks) }, finish_reason = "stop" } },
                usage,
            });
            return;
        }

        context.Response.ContentType = "text/event-stream";
        for (var i = 0; i < Chunks; i++)
        {
            await SendAsync(context, new
            {
                id, @object = "chat.completion.chunk", created = 1, model = Model, system_fingerprint = Name,
                choices = new[] { new { index = 0, delta = new { content = $"tok{i} " }, finish_reason = i == Chunks - 1 ? "stop" : null } },
            });
            if (i == 0 && HoldAfterFirstChunk is { } hold)
            {
                await hold.Task;
            }

            await Task.Delay(ChunkDelay);
        }

        if (body.TryGetProperty("stream_options", out var options) && options.TryGetProperty("include_usage", out var include) && include.GetBoolean())
        {
            await SendAsync(context, new { id, @object = "chat.completion.chunk", created = 1, model = Model, choices = Array.Empty<object>(), usage });
        }

        await context.Response.WriteAsync("data: [DONE]\n\n");
    }

    public static string Content(int chunks) => string.Concat(Enumerable.Range(0, chunks).Select(i => $"tok{i} "));

    private static async Task SendAsync(HttpContext context, object chunk)
    {
        await context.Response.WriteAsync("data: " + JsonSerializer.Serialize(chunk) + "\n\n");
        await context.Response.Body.FlushAsync();
    }
}
