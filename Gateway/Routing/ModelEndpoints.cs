using AspireAi.Gateway.Auth;
using AspireAi.Gateway.Validation;
using Microsoft.Extensions.Options;

namespace AspireAi.Gateway.Routing;

/// <summary>
/// The OpenAI model endpoints the gateway answers itself: <c>GET /v1/models</c> (every deployment's models merged, plus
/// aliases, as far as the key may use them) and the three model requests handled by <see cref="ModelRequestHandler"/>.
/// </summary>
internal static class ModelEndpoints
{
    public static void MapModelEndpoints(this IEndpointRouteBuilder app)
    {
        var v1 = app.MapGroup("/v1").RequireAuthorization();
        v1.MapPost("/chat/completions", (HttpContext context, ModelRequestHandler handler) => handler.HandleAsync(context, RequestKind.ChatCompletions));
        v1.MapPost("/completions", (HttpContext context, ModelRequestHandler handler) => handler.HandleAsync(context, RequestKind.Completions));
        v1.MapPost("/embeddings", (HttpContext context, ModelRequestHandler handler) => handler.HandleAsync(context, RequestKind.Embeddings));

        v1.MapGet("/models", async (HttpContext context, ModelCatalog catalog, IOptions<GatewayOptions> options) =>
            Results.Json(new { @object = "list", data = (await VisibleAsync(context, catalog, options.Value)).Select(Shape) }));

        v1.MapGet("/models/{**id}", async (string id, HttpContext context, ModelCatalog catalog, IOptions<GatewayOptions> options) =>
            (await VisibleAsync(context, catalog, options.Value)).FirstOrDefault(m => m.Id == id) is { } model
                ? Results.Json(Shape(model))
                : OpenAiError.Result(404, $"The model '{id}' does not exist.", "model", "model_not_found"));
    }

    private static async Task<IEnumerable<ModelEntry>> VisibleAsync(HttpContext context, ModelCatalog catalog, GatewayOptions options)
    {
        var caller = Caller.Of(context);
        var served = (await catalog.ListAsync(context.RequestAborted)).DistinctBy(m => m.Id).ToList();
        var aliases = options.Models.Aliases
            .Select(a => served.FirstOrDefault(m => m.Id == a.Value) is { } target ? target with { Id = a.Key } : null)
            .OfType<ModelEntry>();
        return served.Concat(aliases).Where(m => caller.MayUse(m.Id)).OrderBy(m => m.Id, StringComparer.Ordinal);
    }

    private static object Shape(ModelEntry model) => new { id = model.Id, @object = "model", created = model.Created, owned_by = model.OwnedBy };
}
