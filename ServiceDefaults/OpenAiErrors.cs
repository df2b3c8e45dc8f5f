using System.Text.Json;
using System.Text.Json.Serialization;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Diagnostics;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Microsoft.Extensions.Hosting;

/// <summary>OpenAI's error object, <c>{"error":{"message","type","param","code"}}</c>, the one error shape of every service.</summary>
public sealed record OpenAiError(
    [property: JsonPropertyName("message")] string Message,
    [property: JsonPropertyName("type")] string Type,
    [property: JsonPropertyName("param")] string? Param = null,
    [property: JsonPropertyName("code")] string? Code = null)
{
    /// <summary>The <c>type</c> OpenAI uses for a status code.</summary>
    public static string TypeFor(int statusCode) => statusCode switch
    {
        400 or 404 or 405 or 409 or 413 or 415 or 422 => "invalid_request_error",
        401 => "authentication_error",
        403 => "permission_error",
        429 => "rate_limit_error",
        503 => "service_unavailable_error",
        _ when statusCode >= 500 => "server_error",
        _ => "invalid_request_error",
    };

    /// <summary>A result that writes this error with <paramref name="statusCode"/>.</summary>
    public static IResult Result(int statusCode, string message, string? param = null, string? code = null) =>
        Results.Json(new OpenAiErrorEnvelope(new OpenAiError(message, TypeFor(statusCode), param, code)), statusCode: statusCode);

    /// <summary>Writes this error with <paramref name="statusCode"/> straight to the response.</summary>
    public static Task WriteAsync(HttpContext context, int statusCode, string message, string? param = null, string? code = null)
    {
        context.Response.StatusCode = statusCode;
        return context.Response.WriteAsJsonAsync(
            new OpenAiErrorEnvelope(new OpenAiError(message, TypeFor(statusCode), param, code)), context.RequestAborted);
    }
}

/// <summary>The envelope around <see cref="OpenAiError"/>.</summary>
public sealed record OpenAiErrorEnvelope([property: JsonPropertyName("error")] OpenAiError Error);

/// <summary>Turns unhandled exceptions, malformed bodies and bare status codes into OpenAI error objects.</summary>
public static class OpenAiErrorsExtensions
{
    /// <summary>
    /// Every 4xx/5xx a service produces without a body of its own (unknown route, wrong method, a body over the size limit,
    /// malformed JSON, an unhandled exception) gets OpenAI's error object, so clients parse one shape everywhere.
    /// </summary>
    public static WebApplication UseOpenAiErrors(this WebApplication app)
    {
        app.UseExceptionHandler(errorApp => errorApp.Run(async context =>
        {
            var error = context.Features.Get<IExceptionHandlerFeature>()?.Error;
            var (status, message) = error switch
            {
                BadHttpRequestException bad => (bad.StatusCode, bad.Message),
                JsonException json => (StatusCodes.Status400BadRequest, $"The request body is not valid JSON: {json.Message}"),
                _ => (StatusCodes.Status500InternalServerError, "The server had an error while processing your request."),
            };
            if (status >= 500)
            {
                context.RequestServices.GetRequiredService<ILoggerFactory>().CreateLogger("AspireAi.Errors")
                    .LogError(error, "Unhandled error for {Method} {Path}", context.Request.Method, context.Request.Path);
            }

            await OpenAiError.WriteAsync(context, status, message);
        }));

        app.UseStatusCodePages(async statusContext =>
        {
            var context = statusContext.HttpContext;
            var status = context.Response.StatusCode;
            var message = status switch
            {
                404 => $"Unknown path: {context.Request.Method} {context.Request.Path}.",
                405 => $"Method {context.Request.Method} is not allowed on {context.Request.Path}.",
                413 => "The request body is too large.",
                415 => $"Unsupported content type '{context.Request.ContentType}'.",
                401 => "Missing or invalid credentials.",
                _ => $"The request failed with status {status}.",
            };
            await OpenAiError.WriteAsync(context, status, message);
        });
        return app;
    }
}
