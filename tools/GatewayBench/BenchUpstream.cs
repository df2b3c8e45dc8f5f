using System.Diagnostics;
using System.Text.Json;

namespace AspireAi.GatewayBench;

/// <summary>
/// An upstream that costs next to nothing, so that what the benchmark measures is the gateway: a chat completion answered at
/// once with a small JSON body, or streamed as chunks that carry the <see cref="Stopwatch"/> timestamp of their sending
/// (client and upstream share this process, hence the clock), so a client can tell how long each chunk took to arrive.
/// </summary>
internal sealed class BenchUpstream : IAsyncDisposable
{
    public const string Model = "bench-model";
    private static readonly byte[] Answer = JsonSerializer.SerializeToUtf8Bytes(new
    {
        id = "chatcmpl-bench", @object = "chat.completion", created = 1, model = Model,
        choices = new[] { new { index = 0, message = new { role = "assistant", content = "Hello! How can I help?" }, finish_reason = "stop" } },
        usage = new { prompt_tokens = 12, completion_tokens = 7, total_tokens = 19 },
    });

    private readonly WebApplication _app;

    private BenchUpstream(WebApplication app, string address) => (_app, Address) = (app, address);

    public string Address { get; }

    public static async Task<BenchUpstream> StartAsync(int port, int chunks, TimeSpan chunkInterval)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        var address = $"http://127.0.0.1:{port}";
        builder.WebHost.UseUrls(address);
        var app = builder.Build();
        app.MapGet("/v1/models", () => Results.Json(new { @object = "list", data = new[] { new { id = Model, @object = "model", created = 1, owned_by = "bench" } } }));
        app.MapPost("/v1/chat/completions", async context =>
        {
            using var body = await JsonDocument.ParseAsync(context.Request.Body);
            if (!(body.RootElement.TryGetProperty("stream", out var stream) && stream.GetBoolean()))
            {
                context.Response.ContentType = "application/json";
                await context.Response.Body.WriteAsync(Answer);
                return;
            }

            context.Response.ContentType = "text/event-stream";
            for (var i = 0; i < chunks; i++)
            {
                await context.Response.WriteAsync(
                    $"data: {{\"object\":\"chat.completion.chunk\",\"t\":{Stopwatch.GetTimestamp()},\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"tok \"}}}}]}}\n\n");
                await context.Response.Body.FlushAsync();
                await Task.Delay(chunkInterval);
            }

            await context.Response.WriteAsync("data: {\"object\":\"chat.completion.chunk\",\"choices\":[],\"usage\":{\"prompt_tokens\":12,\"completion_tokens\":50,\"total_tokens\":62}}\n\ndata: [DONE]\n\n");
        });
        await app.StartAsync();
        return new BenchUpstream(app, address);
    }

    public ValueTask DisposeAsync() => _app.DisposeAsync();
}
