namespace AspireAi.Gateway.WebChat;

/// <summary>
/// The web chat at <c>/</c>: plain HTML, JavaScript and CSS from <c>wwwroot</c>, no build step. It needs no authentication to
/// load (the page asks for a key and sends it with every API call) and is served before authentication runs.
/// </summary>
internal static class WebChatExtensions
{
    public static WebApplication UseWebChat(this WebApplication app)
    {
        app.UseDefaultFiles();
        app.UseStaticFiles(new StaticFileOptions
        {
            // The page is tiny and changes with deployments: always revalidate rather than serve a stale script.
            OnPrepareResponse = context => context.Context.Response.Headers.CacheControl = "no-cache",
        });
        return app;
    }
}
