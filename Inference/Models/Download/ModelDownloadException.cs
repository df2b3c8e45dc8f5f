namespace AspireAi.Inference.Models.Download;

/// <summary>A model could not be downloaded or verified: the message names the URL or file and what went wrong.</summary>
public sealed class ModelDownloadException(string message, Exception? inner = null) : Exception(message, inner);
