using AspireAi.Inference.Embeddings;
using AspireAi.Inference.Serving;

namespace AspireAi.Inference.Cli;

/// <summary><c>serve</c> (the default verb, as the AppHost starts the project without arguments): the web host.</summary>
public static class ServeCommand
{
    public static int Run(string[] args)
    {
        var builder = WebApplication.CreateBuilder(args);
        builder.AddServiceDefaults();
        builder.AddEmbeddings();
        builder.Services.AddOptions<InferenceOptions>().Bind(builder.Configuration.GetSection(InferenceOptions.Section));

        var app = builder.Build();
        app.UseOpenAiErrors();
        app.MapDefaultEndpoints();
        app.MapModelEndpoints();
        app.MapEmbeddingEndpoints();
        app.Run();
        return 0;
    }
}
