namespace AspireAi.AppHost.Publishing;

internal static class InferenceModel
{
    /// <summary>
    /// Which model Inference serves (<c>Inference__Model</c>). Locally, <c>--model PATH</c> (a file on this machine) or the
    /// service's own default. Published, the parameter <c>inference-model</c>: a path inside the container or a
    /// <c>hf:OWNER/REPO/FILE.gguf</c> download, chosen at deploy time — a path on the publishing machine means nothing there.
    /// </summary>
    public static IResourceBuilder<ProjectResource> WithModel(this IResourceBuilder<ProjectResource> inference, string? localPath)
    {
        var app = inference.ApplicationBuilder;
        if (app.ExecutionContext.IsPublishMode)
        {
            return inference.WithEnvironment("Inference__Model", app.AddParameter("inference-model"));
        }

        return localPath is { Length: > 0 } ? inference.WithEnvironment("Inference__Model", Path.GetFullPath(localPath)) : inference;
    }
}
