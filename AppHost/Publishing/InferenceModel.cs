using AspireAi.AppHost.Infrastructure;

namespace AspireAi.AppHost.Publishing;

internal static class InferenceModel
{
    /// <summary>
    /// Which model Inference serves (<c>Inference__Model</c>). Locally, <c>--model PATH</c> (an absolute path to a file or
    /// Hugging Face folder on this machine, checked here so that a typo stops the AppHost rather than every replica) or the
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

        if (localPath is null)
        {
            return inference;
        }

        return File.Exists(localPath) || Directory.Exists(localPath)
            ? inference.WithEnvironment("Inference__Model", localPath)
            : throw new AppHostConfigurationException($"--model: there is no model file or folder at {localPath}.");
    }
}
