using System.Text;
using System.Text.RegularExpressions;

namespace AspireAi.Inference.Serving;

/// <summary>
/// Gives the engine's metrics vLLM's exact names on <c>/metrics</c>. OpenTelemetry instrument names may not contain ':'
/// (the SDK drops such instruments), so the engine names them <c>vllm.…</c>, which the Prometheus exporter writes as
/// <c>vllm_…</c>; this middleware turns that prefix into <c>vllm:</c> in the scrape (sample lines and their
/// <c># HELP/# TYPE/# UNIT</c> lines). No other metric starts with <c>vllm_</c>. The engine's own metrics beside vLLM's
/// (the KV offload tier's, <c>aspireai_kv_offload_…</c>) get the same treatment: <c>aspireai:kv_offload_…</c>. OTLP export
/// keeps the dotted names.
/// </summary>
internal static partial class VllmMetricNames
{
    public static IApplicationBuilder UseVllmMetricNames(this IApplicationBuilder app, string path = "/metrics") =>
        app.UseWhen(context => context.Request.Path == path, branch => branch.Use(async (context, next) =>
        {
            var original = context.Response.Body;
            using var buffer = new MemoryStream();
            context.Response.Body = buffer;
            try
            {
                await next(context);
            }
            finally
            {
                context.Response.Body = original;
            }

            var text = Encoding.UTF8.GetString(buffer.GetBuffer(), 0, (int)buffer.Length);
            var bytes = Encoding.UTF8.GetBytes(Prefix().Replace(text, "$1$2:"));
            context.Response.ContentLength = bytes.Length;
            await original.WriteAsync(bytes, context.RequestAborted);
        }));

    [GeneratedRegex(@"(?m)^((?:# (?:HELP|TYPE|UNIT) )?)(vllm|aspireai(?=_kv_offload_))_")]
    private static partial Regex Prefix();
}
